// check.mjs: drive shoald with the official OpenAI Node SDK, unchanged,
// and print what the SDK made of each answer as one JSON object on stdout.
// test_sdk.py compares it with the raw HTTP answers and the mock's script.
// Environment: SHOAL_BASE (http://127.0.0.1:PORT/v1), SHOAL_TOKEN, MOCK
// (the mock's base URL, for scripting its next answers), LOCAL ("1" when a
// local model "st" is configured).
import OpenAI from "openai";

const base = process.env.SHOAL_BASE;
const client = new OpenAI({ baseURL: base, apiKey: process.env.SHOAL_TOKEN, maxRetries: 0 });
const out = {};

async function script(step) {
  const r = await fetch(process.env.MOCK + "/_script", { method: "POST", body: JSON.stringify(step) });
  if (!r.ok) throw new Error("mock /_script: " + r.status);
}

async function caught(fn) {
  try {
    await fn();
    return { thrown: false };
  } catch (e) {
    return { thrown: true, cls: e.constructor.name, status: e.status ?? null,
             type: e.type ?? e.error?.type ?? null, code: e.code ?? null, message: e.message };
  }
}

async function streamed(params) {
  const s = await client.chat.completions.create({ ...params, stream: true,
                                                   stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, id = null, chunks = 0;
  for await (const c of s) {
    chunks++;
    id = c.id;
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (ch?.delta?.content) text += ch.delta.content;
    if (ch?.finish_reason) finish = ch.finish_reason;
  }
  return { text, finish, usage, id, chunks };
}

const msgs = [{ role: "user", content: "Once upon a time" }];
out.models = (await client.models.list()).data.map(m => ({ id: m.id, provider: m.provider }));

if (process.env.LOCAL === "1") {
  const p = { model: "st", messages: msgs, max_tokens: 24, temperature: 0 };
  const w = await client.chat.completions.create(p);
  out.local_whole = { text: w.choices[0].message.content, finish: w.choices[0].finish_reason,
                      usage: w.usage, id: w.id, object: w.object };
  out.local_stream = await streamed(p);
  const lp = await client.chat.completions.create({ ...p, max_tokens: 4, logprobs: true,
                                                    top_logprobs: 3 });
  out.local_logprobs = lp.choices[0].logprobs.content.map(t => ({
    token: t.token, logprob: t.logprob, top: t.top_logprobs.map(x => x.logprob) }));
}

out.remote_whole = await (async () => {
  const w = await client.chat.completions.create({ model: "oa", messages: msgs });
  return { text: w.choices[0].message.content, finish: w.choices[0].finish_reason, usage: w.usage };
})();
out.remote_stream = await streamed({ model: "an", messages: msgs });

await script({ tool_calls: [{ id: "call_9", name: "get_weather", arguments: { city: "Paris" } }] });
const tools = [{ type: "function", function: { name: "get_weather",
                 parameters: { type: "object", properties: { city: { type: "string" } } } } }];
const t = await client.chat.completions.create({ model: "oa", messages: msgs, tools });
out.tool_call = { finish: t.choices[0].finish_reason,
                  calls: (t.choices[0].message.tool_calls ?? []).map(c => ({
                    id: c.id, type: c.type, name: c.function.name,
                    args: JSON.parse(c.function.arguments) })) };

out.not_found = await caught(() => client.chat.completions.create({ model: "nope", messages: msgs }));
await script({ error: "context_length" });
out.overflow = await caught(() => client.chat.completions.create({ model: "oa", messages: msgs }));
const wrong = new OpenAI({ baseURL: base, apiKey: "not-the-token", maxRetries: 0 });
out.bad_token = await caught(() => wrong.models.list());

console.log(JSON.stringify(out));
