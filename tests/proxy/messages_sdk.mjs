// The official @anthropic-ai/sdk npm package as a client of `llmcache serve`
// on /v1/messages. Run by tests/check_proxy_messages.c: node messages_sdk.mjs
// with PROXY_URL, ADMIN_KEY and TAG in the environment. Prints one JSON
// object with what it saw; the C test judges it (and counts the upstream
// requests).
import Anthropic from '@anthropic-ai/sdk';

const tag = process.env.TAG;
const client = (key) => new Anthropic({ apiKey: key, baseURL: process.env.PROXY_URL, maxRetries: 0 });
const admin = client(process.env.ADMIN_KEY);
const model = 'claude-3-5-haiku-latest';
const out = {};

const params = (text, extra = {}) => ({
  model,
  max_tokens: 256,
  messages: [{ role: 'user', content: `${text} ${tag}` }],
  ...extra,
});

function texts(msg) {
  return msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

async function create(text, extra = {}) {
  const { data, response } = await admin.messages.create(params(text, extra)).withResponse();
  return {
    status: response.headers.get('x-llmcache-status'),
    key: response.headers.get('x-llmcache-key'),
    text: texts(data),
    cache: String(data.cache === true),
    stop_reason: data.stop_reason,
    blocks: data.content.map((b) => b.type).join(' '),
    message: data,
  };
}

// messages.stream: the SDK's stream helper; the event types as they came,
// and the final message it accumulated.
async function stream(text, extra = {}) {
  const s = admin.messages.stream(params(text, extra));
  const types = [];
  const deltas = [];
  s.on('streamEvent', (ev) => {
    types.push(ev.type);
    if (ev.type === 'content_block_delta') deltas.push(ev.delta.type);
  });
  const { response } = await s.withResponse();
  const final = await s.finalMessage();
  // The kinds of events in order, a run of deltas counted once: a replay
  // cuts the texts into its own number of pieces.
  const kinds = types.filter((t, i) => t !== 'content_block_delta' || types[i - 1] !== t);
  return {
    status: response.headers.get('x-llmcache-status'),
    types: types.join(' '),
    kinds: kinds.join(' '),
    deltas: deltas.join(' '),
    text: texts(final),
    blocks: final.content.map((b) => b.type).join(' '),
    message: final,
  };
}

// stream: true through messages.create: the raw events.
async function rawStream(text) {
  const { data, response } = await admin.messages.create(params(text, { stream: true })).withResponse();
  const types = [];
  let t = '';
  for await (const ev of data) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') t += ev.delta.text;
  }
  return { status: response.headers.get('x-llmcache-status'), types: types.join(' '), text: t };
}

// The message without the cache's marking and the SDK's own parsed_output.
const strip = (m) => {
  const c = { ...m };
  delete c.cache;
  delete c.parsed_output;
  return JSON.stringify(c);
};

out.create1 = await create('sdk hello');
out.create2 = await create('sdk hello');
out.create_same = String(strip(out.create1.message) === strip(out.create2.message));

out.stream1 = await stream('sdk stream');
out.stream2 = await stream('sdk stream');
// The streamed miss answers a plain call too.
out.after_stream = await create('sdk stream');
out.stream_same = String(strip(out.stream1.message) === strip(out.stream2.message));

out.raw1 = await rawStream('sdk raw');
out.raw2 = await rawStream('sdk raw');

// Tool use and thinking (with its signature), streamed then plain.
const tools = { tools: [{ name: 'lookup', description: 'look it up', input_schema: { type: 'object' } }] };
const think = { thinking: { type: 'enabled', budget_tokens: 1024 } };
out.tool1 = await stream('sdk tool', { ...tools, ...think });
out.tool2 = await stream('sdk tool', { ...tools, ...think });
out.tool3 = await create('sdk tool', { ...tools, ...think });
const tu = out.tool3.message.content.find((b) => b.type === 'tool_use');
out.tool_input = JSON.stringify(tu ? tu.input : null);
const th = out.tool3.message.content.find((b) => b.type === 'thinking');
out.thinking = th ? th.thinking : '';
out.signature = th ? th.signature : '';
out.tool_same = String(strip(out.tool1.message) === strip(out.tool2.message) &&
  strip(out.tool2.message) === strip(out.tool3.message));

// The beta client: anthropic-beta header (a different key), ?beta=true.
const b1 = await admin.beta.messages.create({ ...params('sdk beta'), betas: ['token-efficient-tools-2025-02-19'] }).withResponse();
const b2 = await admin.beta.messages.create({ ...params('sdk beta'), betas: ['token-efficient-tools-2025-02-19'] }).withResponse();
const b3 = await admin.messages.create(params('sdk beta')).withResponse();
out.beta = {
  status1: b1.response.headers.get('x-llmcache-status'),
  status2: b2.response.headers.get('x-llmcache-status'),
  plain: b3.response.headers.get('x-llmcache-status'),
  differ: String(b1.response.headers.get('x-llmcache-key') !== b3.response.headers.get('x-llmcache-key')),
};

// Errors come back in the Messages API's shape, as the SDK's classes.
try {
  await admin.messages.create({ model, max_tokens: 10, messages: [] });
  out.bad = { status: 'no error' };
} catch (e) {
  out.bad = { status: String(e.status), name: e.constructor.name, type: e.error?.error?.type ?? '', outer: e.error?.type ?? '' };
}
try {
  await client('sk-not-a-proxy-key').messages.create(params('sdk auth'));
  out.auth = { status: 'no error' };
} catch (e) {
  out.auth = { status: String(e.status), name: e.constructor.name, type: e.error?.error?.type ?? '' };
}

for (const k of Object.keys(out)) if (out[k] && out[k].message) delete out[k].message;
console.log(JSON.stringify(out));
