// The official openai npm package as a client of `llmcache serve`.
// Run by tests/check_proxy.c: node openai_client.mjs basic|coalesce
// with PROXY_URL, ADMIN_KEY, KEY_A, KEY_B and TAG in the environment.
// Prints one JSON object with what it saw; the C test judges it.
import OpenAI from 'openai';

const base = process.env.PROXY_URL + '/v1';
const tag = process.env.TAG;
const mode = process.argv[2] || 'basic';
const client = (key) => new OpenAI({ apiKey: key, baseURL: base, maxRetries: 0 });
const admin = client(process.env.ADMIN_KEY);
const out = {};

async function chat(c, text, extra = {}) {
  const { data, response } = await c.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${text} ${tag}` }], ...extra })
    .withResponse();
  return {
    status: response.headers.get('x-llmcache-status'),
    key: response.headers.get('x-llmcache-key'),
    content: data.choices[0].message.content,
    cache: String(data.cache === true),
  };
}

async function stream(c, text) {
  const { data, response } = await c.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `${text} ${tag}` }], stream: true })
    .withResponse();
  let t = '';
  let chunks = 0;
  for await (const ch of data) {
    chunks++;
    t += ch.choices[0]?.delta?.content ?? '';
  }
  return { status: response.headers.get('x-llmcache-status'), text: t, chunks: String(chunks) };
}

async function embed(c, inputs) {
  const { data, response } = await c.embeddings
    .create({ model: 'text-embedding-3-small', input: inputs })
    .withResponse();
  return {
    status: response.headers.get('x-llmcache-status'),
    count: String(data.data.length),
    dims: String(data.data[0].embedding.length),
    first: JSON.stringify(data.data[0].embedding.slice(0, 4)),
  };
}

if (mode === 'basic') {
  out.first = await chat(admin, 'npm hello');
  out.second = await chat(admin, 'npm hello');
  out.stream1 = await stream(admin, 'npm stream');
  out.stream2 = await stream(admin, 'npm stream');
  out.embed1 = await embed(admin, [`npm one ${tag}`, `npm two ${tag}`]);
  out.embed2 = await embed(admin, [`npm one ${tag}`, `npm two ${tag}`]);
  try {
    await chat(client('sk-not-a-proxy-key'), 'npm auth');
    out.auth = { status: 'no error' };
  } catch (e) {
    out.auth = { status: String(e.status), name: e.constructor.name, message: e.message };
  }
  const a = client(process.env.KEY_A);
  const b = client(process.env.KEY_B);
  out.tenantA1 = await chat(a, 'npm tenant');
  out.tenantA2 = await chat(a, 'npm tenant');
  out.tenantB1 = await chat(b, 'npm tenant');
  try {
    // A request the proxy refuses: bad parameter type for the cache control.
    await admin.chat.completions.create({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], cache: { ttl: 'long' },
    });
    out.badjson = { status: 'no error' };
  } catch (e) {
    out.badjson = { status: String(e.status), message: e.message };
  }
} else if (mode === 'coalesce') {
  // Ten identical requests at once; the C side counts upstream calls.
  const rs = await Promise.all(Array.from({ length: 10 }, () => chat(admin, 'npm coalesce')));
  out.coalesce = {
    n: String(rs.length),
    distinct: String(new Set(rs.map((r) => r.content)).size),
    misses: String(rs.filter((r) => r.status === 'MISS').length),
  };
  const ss = await Promise.all(Array.from({ length: 4 }, () => stream(admin, 'npm coalesce stream')));
  out.streams = { distinct: String(new Set(ss.map((s) => s.text)).size) };
}
console.log(JSON.stringify(out));
