// A real OpenID Connect provider (the certified `oidc-provider` package) on loopback, for
// devplane's single sign-on integration test. Not for production: development interactions
// (any password is accepted), in-memory storage.
//
//   node provider.mjs --port N        (0 picks a free port)
//
// Prints `oidc-provider listening on http://127.0.0.1:PORT` once it serves. Issuer: that URL.
//
// Clients (both confidential, client_secret_basic, PKCE S256 required by the provider):
//   devplane     / devplane-secret      ID tokens signed RS256
//   devplane-es  / devplane-es-secret   ID tokens signed ES256
//
// Accounts (any password): alice (groups devplane-admins), bob (devplane-ops, staff),
// carol (no groups).
//
// Test controls, under /__test/ (JSON bodies):
//   POST /__test/redirects {"uris": [...]}   registers devplane's callback URL(s) on both clients
//   POST /__test/mode {"mode": "..."}        how the next token responses' ID token is altered:
//        none (default), tamper (a claim changed, signature kept), iss, aud, aud_multi, azp,
//        exp, nonce (re-signed with the real key after changing that claim), unknown_kid
//        (signed with a key the JWKS never had), alg_none, hs256 (signed with the client secret)
//   POST /__test/rotate                      new signing keys, published first in the JWKS
//                                            (the old ones stay published)
//   GET  /__test/keys                        the current signing key ids
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const args = process.argv.slice(2);
const portArg = args.indexOf('--port');
const requestedPort = portArg >= 0 ? Number(args[portArg + 1]) : 0;

const accounts = {
  alice: { name: 'Alice Admin', email: 'alice@example.test', groups: ['devplane-admins', 'staff'] },
  bob: { name: 'Bob Ops', email: 'bob@example.test', groups: ['devplane-ops', 'staff'] },
  carol: { name: 'Carol Nobody', email: 'carol@example.test', groups: [] },
};

let generation = 0;
function newKeys() {
  generation += 1;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaJwk = { ...rsa.privateKey.export({ format: 'jwk' }), kid: `rsa-${generation}`, alg: 'RS256', use: 'sig' };
  const ecJwk = { ...ec.privateKey.export({ format: 'jwk' }), kid: `ec-${generation}`, alg: 'ES256', use: 'sig' };
  return [{ jwk: rsaJwk, key: rsa.privateKey }, { jwk: ecJwk, key: ec.privateKey }];
}

let keys = newKeys();       // current signing keys, first in the JWKS
let oldKeys = [];           // still published after a rotation
let redirectUris = ['http://127.0.0.1:1/api/v1/auth/oidc/callback'];
let mode = 'none';

const clientSecrets = { devplane: 'devplane-secret', 'devplane-es': 'devplane-es-secret' };

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'devplane',
        client_secret: clientSecrets.devplane,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'RS256',
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'devplane-es',
        client_secret: clientSecrets['devplane-es'],
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [...keys, ...oldKeys].map((k) => k.jwk) },
    cookies: { keys: ['devplane-test-cookie-key'] },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    conformIdTokenClaims: false, // put the scope's claims in the ID token itself
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, ...account };
        },
      };
    },
    features: { devInteractions: { enabled: true } },
    ttl: { IdToken: 3600, AccessToken: 600, AuthorizationCode: 60 },
  });
  provider.proxy = false;
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method === 'POST' && ctx.path === '/token' && ctx.status === 200 && mode !== 'none'
        && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: alter(ctx.body.id_token, issuer) };
    }
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

function signWith(header, payload, keyEntry, secret) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  let sig;
  if (header.alg === 'none') sig = Buffer.alloc(0);
  else if (header.alg === 'HS256') sig = crypto.createHmac('sha256', secret).update(input).digest();
  else if (header.alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: keyEntry.key, dsaEncoding: 'ieee-p1363' });
  else sig = crypto.sign('sha256', Buffer.from(input), keyEntry.key);
  return `${input}.${b64url(sig)}`;
}

function alter(idToken, issuer) {
  const [h, p, s] = idToken.split('.');
  const header = decode(h);
  const payload = decode(p);
  const current = keys.find((k) => k.jwk.kid === header.kid) ?? oldKeys.find((k) => k.jwk.kid === header.kid);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'tamper': {
      const forged = { ...payload, groups: ['devplane-admins'] };
      return `${h}.${b64url(JSON.stringify(forged))}.${s}`;
    }
    case 'iss': return signWith(header, { ...payload, iss: `${issuer}/evil` }, current);
    case 'aud': return signWith(header, { ...payload, aud: 'someone-else' }, current);
    case 'aud_multi': return signWith(header, { ...payload, aud: [payload.aud, 'someone-else'], azp: undefined }, current);
    case 'azp': return signWith(header, { ...payload, azp: 'someone-else' }, current);
    case 'exp': return signWith(header, { ...payload, iat: now - 7200, exp: now - 3600 }, current);
    case 'nonce': return signWith(header, { ...payload, nonce: 'not-the-nonce' }, current);
    case 'unknown_kid': {
      const stray = header.alg === 'ES256'
        ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      return signWith({ ...header, kid: 'never-published' }, payload, { key: stray.privateKey });
    }
    case 'alg_none': return signWith({ alg: 'none', typ: 'JWT' }, payload);
    case 'hs256': {
      const secret = clientSecrets[Array.isArray(payload.aud) ? payload.aud[0] : payload.aud];
      return signWith({ alg: 'HS256', typ: 'JWT', kid: header.kid }, payload, undefined, secret);
    }
    default: return idToken;
  }
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

let provider;
let issuer;
const server = http.createServer(async (req, res) => {
  if (!req.url.startsWith('/__test/')) {
    provider.callback()(req, res);
    return;
  }
  try {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'POST' && req.url === '/__test/redirects') {
      const body = await readJson(req);
      redirectUris = body.uris;
      provider = buildProvider(issuer);
      return reply(200, { redirectUris });
    }
    if (req.method === 'POST' && req.url === '/__test/mode') {
      const body = await readJson(req);
      mode = body.mode;
      return reply(200, { mode });
    }
    if (req.method === 'POST' && req.url === '/__test/rotate') {
      oldKeys = [...keys, ...oldKeys];
      keys = newKeys();
      provider = buildProvider(issuer);
      return reply(200, { kids: keys.map((k) => k.jwk.kid) });
    }
    if (req.method === 'GET' && req.url === '/__test/keys') {
      return reply(200, { kids: keys.map((k) => k.jwk.kid) });
    }
    return reply(404, { error: 'unknown test control' });
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(err));
  }
});

server.listen(requestedPort, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  provider = buildProvider(issuer);
  console.log(`oidc-provider listening on ${issuer}`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
