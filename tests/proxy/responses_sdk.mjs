// The official openai npm package's Responses API (responses.create,
// plain and stream: true) as a client of `llmcache serve`.
// Run by tests/check_proxy.c: node responses_sdk.mjs responses
// with PROXY_URL, ADMIN_KEY and TAG in the environment.
// Prints one JSON object with what it saw; the C test judges it.
import OpenAI from 'openai';

const tag = process.env.TAG;
const client = new OpenAI({ apiKey: process.env.ADMIN_KEY, baseURL: process.env.PROXY_URL + '/v1', maxRetries: 0 });
const out = {};

async function plain(text, extra = {}) {
  const { data, response } = await client.responses
    .create({ model: 'gpt-4o-mini', input: `${text} ${tag}`, ...extra })
    .withResponse();
  return {
    status: response.headers.get('x-llmcache-status'),
    text: data.output_text,
    cache: String(data.cache === true),
  };
}

async function stream(text, extra = {}) {
  const { data, response } = await client.responses
    .create({ model: 'gpt-4o-mini', input: `${text} ${tag}`, stream: true, ...extra })
    .withResponse();
  const types = [];
  let t = '';
  let args = '';
  let deltas = 0;
  let final = '';
  for await (const ev of data) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') {
      t += ev.delta;
      deltas++;
    }
    if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
    if (ev.type === 'response.completed') {
      for (const item of ev.response.output) {
        if (item.type === 'message') final += item.content.map((c) => c.text ?? '').join('');
      }
    }
  }
  return {
    status: response.headers.get('x-llmcache-status'),
    types: types.join(' '),
    text: t,
    args,
    deltas: String(deltas),
    final,
  };
}

const tools = [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} } }];

out.plain1 = await plain('sdk plain');
out.plain2 = await plain('sdk plain');
out.stream1 = await stream('sdk stream with several words in it');
out.stream2 = await stream('sdk stream with several words in it');
out.tool1 = await stream('CALL_TOOL sdk', { tools });
out.tool2 = await stream('CALL_TOOL sdk', { tools });
out.think1 = await stream('THINK sdk', { reasoning: { effort: 'low', summary: 'auto' } });
out.think2 = await stream('THINK sdk', { reasoning: { effort: 'low', summary: 'auto' } });
const p1 = await plain('sdk follow-up', { previous_response_id: 'resp_prev' });
const p2 = await plain('sdk follow-up', { previous_response_id: 'resp_prev' });
out.prev = { status: p1.status === p2.status ? p1.status : `${p1.status}/${p2.status}` };
try {
  await client.responses.create({ model: 'gpt-4o-mini' });
  out.bad = { status: 'no error' };
} catch (e) {
  out.bad = { status: String(e.status), message: e.message };
}
console.log(JSON.stringify(out));
