#!/usr/bin/env node
// The scripted LLM provider: the one test double devplane allows, standing in for paid remote
// services (OpenAI, Anthropic). It speaks the REAL wire formats over real HTTP on 127.0.0.1 —
// OpenAI-compatible chat completions (POST .../chat/completions) and the Anthropic Messages
// API (POST .../v1/messages), whole JSON answers or SSE streams as each provider sends them —
// but instead of a model it replays a script of answers, and it records every request so a
// test can assert what devplane sent (headers, messages, tools, tool results).
//
// Usage: node scripted_provider.mjs [--port N]      prints "scripted-provider listening on PORT"
//
// Control routes (for the test, not part of any provider API):
//   PUT  /_script    body: a JSON array of steps, consumed one per provider request (replaces
//                    the script and clears the recorded requests)
//   GET  /_requests  every provider request so far: [{path, headers, body}]
//
// A step is one of:
//   {"text": "...", "toolCalls": [{"id"?, "name", "arguments": {...} | "argumentsText": "..."}],
//    "usage": {"input": N, "output": M}, "stop"?: "..."}      an answer, rendered in the wire
//        format of the route that was called, streamed when the request says "stream": true
//   {"status": 500, "body": "...", "headers": {...}}          a plain HTTP answer
//   {"garbage": "..."}                                        200 with a body that is no format
//   {"truncate": true, ...answer}                             a stream cut before its end
// Any step may add "repeat": true (it is used again for every later request) and "delayMs".
// With the script used up, the answer is 500 "script exhausted".
import http from 'node:http';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const port = portArg >= 0 ? Number(args[portArg + 1]) : 0;
if (args.includes('--help') || args.includes('-h')) {
  console.log('Usage: node scripted_provider.mjs [--port N]\n' +
              'A scripted OpenAI/Anthropic wire-format server for tests (see the header comment).');
  process.exit(0);
}

let script = [];
let requests = [];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 16 * 1024 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function nextStep() {
  if (script.length === 0) return {status: 500, body: JSON.stringify({error: {message: 'script exhausted'}})};
  const step = script[0];
  if (!step.repeat) script.shift();
  return step;
}

// Splits a string in pieces of at most n characters (to exercise delta assembly).
function pieces(text, n) {
  const out = [];
  for (let i = 0; i < text.length; i += n) out.push(text.slice(i, i + n));
  return out.length ? out : [''];
}

function argsText(call) {
  if (typeof call.argumentsText === 'string') return call.argumentsText;
  return JSON.stringify(call.arguments ?? {});
}

// ---- OpenAI-compatible chat completions ----
function openaiWhole(step, model) {
  const calls = (step.toolCalls ?? []).map((c, i) => ({
    id: c.id ?? `call_${i + 1}`, type: 'function',
    function: {name: c.name, arguments: argsText(c)},
  }));
  const message = {role: 'assistant', content: step.text ?? null};
  if (calls.length) message.tool_calls = calls;
  return {
    id: 'chatcmpl-scripted', object: 'chat.completion', created: Math.floor(Date.now() / 1000), model,
    choices: [{index: 0, message, finish_reason: step.stop ?? (calls.length ? 'tool_calls' : 'stop')}],
    usage: {prompt_tokens: step.usage?.input ?? 0, completion_tokens: step.usage?.output ?? 0,
            total_tokens: (step.usage?.input ?? 0) + (step.usage?.output ?? 0)},
  };
}

function openaiEvents(step, model, includeUsage) {
  const base = {id: 'chatcmpl-scripted', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model};
  const chunk = (delta, finish = null) => ({...base, choices: [{index: 0, delta, finish_reason: finish}]});
  const events = [chunk({role: 'assistant', content: ''})];
  for (const p of pieces(step.text ?? '', 7)) if (p) events.push(chunk({content: p}));
  (step.toolCalls ?? []).forEach((c, i) => {
    events.push(chunk({tool_calls: [{index: i, id: c.id ?? `call_${i + 1}`, type: 'function',
                                     function: {name: c.name, arguments: ''}}]}));
    for (const p of pieces(argsText(c), 5)) events.push(chunk({tool_calls: [{index: i, function: {arguments: p}}]}));
  });
  events.push(chunk({}, step.stop ?? ((step.toolCalls ?? []).length ? 'tool_calls' : 'stop')));
  if (includeUsage) {
    events.push({...base, choices: [], usage: {prompt_tokens: step.usage?.input ?? 0,
      completion_tokens: step.usage?.output ?? 0,
      total_tokens: (step.usage?.input ?? 0) + (step.usage?.output ?? 0)}});
  }
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).concat(['data: [DONE]\n\n']);
}

// ---- Anthropic Messages ----
function anthropicWhole(step, model) {
  const content = [];
  if (step.text) content.push({type: 'text', text: step.text});
  (step.toolCalls ?? []).forEach((c, i) => {
    content.push({type: 'tool_use', id: c.id ?? `toolu_${i + 1}`, name: c.name,
                  input: c.arguments ?? JSON.parse(c.argumentsText ?? '{}')});
  });
  return {
    id: 'msg_scripted', type: 'message', role: 'assistant', model, content,
    stop_reason: step.stop ?? ((step.toolCalls ?? []).length ? 'tool_use' : 'end_turn'), stop_sequence: null,
    usage: {input_tokens: step.usage?.input ?? 0, output_tokens: step.usage?.output ?? 0},
  };
}

function anthropicEvents(step, model) {
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({type, ...data})}\n\n`;
  const out = [ev('message_start', {message: {id: 'msg_scripted', type: 'message', role: 'assistant', model,
    content: [], stop_reason: null, stop_sequence: null,
    usage: {input_tokens: step.usage?.input ?? 0, output_tokens: 1}}})];
  let index = 0;
  if (step.text) {
    out.push(ev('content_block_start', {index, content_block: {type: 'text', text: ''}}));
    out.push(ev('ping', {}));
    for (const p of pieces(step.text, 7)) out.push(ev('content_block_delta', {index, delta: {type: 'text_delta', text: p}}));
    out.push(ev('content_block_stop', {index}));
    index++;
  }
  (step.toolCalls ?? []).forEach((c, i) => {
    out.push(ev('content_block_start', {index, content_block: {type: 'tool_use', id: c.id ?? `toolu_${i + 1}`, name: c.name, input: {}}}));
    out.push(ev('content_block_delta', {index, delta: {type: 'input_json_delta', partial_json: ''}}));
    for (const p of pieces(argsText(c), 5)) out.push(ev('content_block_delta', {index, delta: {type: 'input_json_delta', partial_json: p}}));
    out.push(ev('content_block_stop', {index}));
    index++;
  });
  out.push(ev('message_delta', {delta: {stop_reason: step.stop ?? ((step.toolCalls ?? []).length ? 'tool_use' : 'end_turn'), stop_sequence: null},
                                usage: {output_tokens: step.usage?.output ?? 0}}));
  out.push(ev('message_stop', {}));
  return out;
}

async function provider(req, res, format) {
  const text = await readBody(req);
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  requests.push({path: req.url, headers: req.headers, body});
  const step = nextStep();
  if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
  if (step.status) {
    res.writeHead(step.status, {'content-type': 'application/json', ...(step.headers ?? {})});
    res.end(step.body ?? '');
    return;
  }
  if (typeof step.garbage === 'string') {
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(step.garbage);
    return;
  }
  const model = body?.model ?? 'scripted';
  if (body?.stream) {
    let events = format === 'openai' ? openaiEvents(step, model, body?.stream_options?.include_usage)
                                     : anthropicEvents(step, model);
    if (step.truncate) events = events.slice(0, Math.max(1, Math.floor(events.length / 2)));
    res.writeHead(200, {'content-type': 'text/event-stream', 'cache-control': 'no-cache'});
    for (const e of events) {
      res.write(e);
      await new Promise((r) => setImmediate(r));
    }
    if (step.truncate) {
      // Cut the connection mid-stream, as a dropped network or a crashed server would.
      res.socket.destroy();
      return;
    }
    res.end();
    return;
  }
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify(format === 'openai' ? openaiWhole(step, model) : anthropicWhole(step, model)));
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'PUT' && req.url === '/_script') {
      script = JSON.parse(await readBody(req));
      requests = [];
      res.writeHead(204).end();
    } else if (req.method === 'GET' && req.url === '/_requests') {
      res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(requests));
    } else if (req.method === 'POST' && req.url.endsWith('/chat/completions')) {
      await provider(req, res, 'openai');
    } else if (req.method === 'POST' && req.url.endsWith('/v1/messages')) {
      await provider(req, res, 'anthropic');
    } else {
      res.writeHead(404, {'content-type': 'application/json'}).end(JSON.stringify({error: {message: 'no such route'}}));
    }
  } catch (e) {
    if (!res.headersSent) res.writeHead(400, {'content-type': 'application/json'});
    res.end(JSON.stringify({error: {message: String(e.message ?? e)}}));
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`scripted-provider listening on ${server.address().port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
