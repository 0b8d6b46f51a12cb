// The openai npm package, configured as its README says for another endpoint:
//   new OpenAI({ apiKey, baseURL })
// Run by tests/clients/test_openai_node.py: a chat completion, then a streamed one read with the
// loop most code uses (`chunk.choices[0].delta.content`). Prints one JSON line per observation,
// with the milliseconds since the stream was asked for.
import OpenAI from "openai";

const client = new OpenAI({
  apiKey: process.env.AIPIPE_TOKEN,
  baseURL: `${process.env.AIPIPE_URL}/openai/v1`,
  maxRetries: 0,
});
const messages = [{ role: "user", content: "Say hello" }];
const say = (line) => console.log(JSON.stringify(line));

const reply = await client.chat.completions.create({ model: "gpt-4o-mini", messages });
say({ kind: "chat", text: reply.choices[0].message.content, usage: reply.usage });

const started = performance.now();
const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages, stream: true });
for await (const chunk of stream) {
  say({ kind: "delta", ms: performance.now() - started, text: chunk.choices[0].delta.content ?? "" });
}
say({ kind: "done" });
