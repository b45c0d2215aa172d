// A misbehaving server for the legacy HTTP+SSE transport (devplane's hostile-server tests).
// Listens on 127.0.0.1:$PORT; GET /sse answers an event stream whose behaviour the mode (first
// argument) chooses:
//   foreign     the endpoint event names a URL on another origin
//   silent      never sends the endpoint event
//   refuse      answers GET /sse with 403
import { createServer } from 'node:http';

const mode = process.argv[2] ?? 'silent';
const server = createServer((req, res) => {
  if (req.method !== 'GET' || !req.url.startsWith('/sse')) {
    res.writeHead(404).end();
    return;
  }
  if (mode === 'refuse') {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('no');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': hello\n\n');
  if (mode === 'foreign') res.write('event: endpoint\ndata: http://192.0.2.1:9/message?sessionId=x\n\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.error('listening'));
