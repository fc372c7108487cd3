#!/usr/bin/env node
// A real OpenID Connect provider for govsite's SSO tests: panva's certified `oidc-provider` with its
// in-memory storage, one confidential client and the people in a JSON file that is read again on
// every request, so a test changes someone's groups between two logins by rewriting the file.
//
//   node server.mjs --port 9000 --users users.json \
//       --client-id govsite --client-secret s3cret \
//       --redirect-uri http://127.0.0.1:8000/accounts/oidc/sso/login/callback/
//
// users.json: {"users": [{"email": "ann@example.com", "name": "Ann", "groups": ["eng"], "password": "pw",
//                         "sub": "optional, defaults to the email", "email_verified": true}]}
//
// Interactions are the provider's own prompts (login, then consent) answered through two plain HTML
// forms that a test submits like a browser would: /interaction/<uid> shows the form for the current
// prompt; its POST finishes the prompt with `interactionFinished`, and the provider carries on with
// the authorization-code flow.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '9000' },
    users: { type: 'string' },
    'client-id': { type: 'string', default: 'govsite' },
    'client-secret': { type: 'string', default: 'govsite-test-client-secret-0123456789abcdef' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
  },
});

if (!args.users) {
  console.error('--users FILE is required');
  process.exit(2);
}
if (args['redirect-uri'].length === 0) {
  console.error('--redirect-uri URL is required (repeat it for more than one)');
  process.exit(2);
}

const port = Number(args.port);
const issuer = `http://${args.host}:${port}`;

// --- people ------------------------------------------------------------------------------------------

function loadUsers() {
  const parsed = JSON.parse(readFileSync(args.users, 'utf8'));
  const list = Array.isArray(parsed) ? parsed : parsed.users ?? [];
  return list.map((user) => ({ ...user, sub: String(user.sub ?? user.email) }));
}

function userBySub(sub) {
  return loadUsers().find((user) => user.sub === sub);
}

function userByEmail(email) {
  const wanted = String(email ?? '').trim().toLowerCase();
  return loadUsers().find((user) => String(user.email).toLowerCase() === wanted);
}

async function findAccount(_ctx, sub) {
  // Read at every call: the claims sent are the file's as it is now, not as it was at login.
  if (!userBySub(sub)) return undefined;
  return {
    accountId: sub,
    async claims() {
      const user = userBySub(sub) ?? {};
      const claims = {
        sub,
        email: user.email,
        email_verified: user.email_verified ?? true,
        name: user.name ?? '',
        groups: user.groups ?? [],
      };
      if (user.given_name) claims.given_name = user.given_name;
      if (user.family_name) claims.family_name = user.family_name;
      return claims;
    },
  };
}

// --- the provider --------------------------------------------------------------------------------------

const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: randomUUID(),
  use: 'sig',
  alg: 'RS256',
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: args['redirect-uri'],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      // allauth sends the secret in the body whenever the provider offers client_secret_post.
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  findAccount,
  // Many identity providers send groups only with a "groups" scope; govsite asks for
  // openid/profile/email, so this one releases them with the profile.
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'groups'],
  },
  scopes: ['openid', 'email', 'profile'],
  cookies: { keys: [randomBytes(32).toString('hex')] },
  jwks: { keys: [signingKey] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  async renderError(ctx, out) {
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = `OIDC error: ${out.error}: ${out.error_description ?? ''}\n`;
  },
});

for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'discovery.error']) {
  provider.on(event, (_ctx, error) => console.error(`[oidc] ${event}: ${error?.message} ${error?.error_detail ?? ''}`));
}

// --- interactions: a login form and a consent form --------------------------------------------------------

const escapeHtml = (value) =>
  String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(res, status, title, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

function loginForm(res, uid, { error = '', email = '' } = {}) {
  page(res, error ? 401 : 200, 'Sign in to the test identity provider', `
    ${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
    <form method="post" action="/interaction/${escapeHtml(uid)}/login" id="login">
      <label>Email <input type="email" name="email" value="${escapeHtml(email)}" required></label>
      <label>Password <input type="password" name="password"></label>
      <button type="submit">Sign in</button>
    </form>`);
}

function consentForm(res, uid, details) {
  const scopes = (details.prompt.details.missingOIDCScope ?? []).join(' ');
  page(res, 200, `Allow ${details.params.client_id} to sign you in?`, `
    <p>Scopes: ${escapeHtml(scopes)}</p>
    <form method="post" action="/interaction/${escapeHtml(uid)}/confirm" id="consent">
      <button type="submit">Allow</button>
    </form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantConsent(details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return details.grantId ? {} : { grantId };
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    page(res, 400, 'Interaction mismatch', '<p>This sign-in was started elsewhere; start again.</p>');
    return;
  }
  const prompt = details.prompt.name;
  if (req.method === 'GET' && !action) {
    if (prompt === 'login') loginForm(res, uid);
    else if (prompt === 'consent') consentForm(res, uid, details);
    else page(res, 400, `Unsupported prompt ${prompt}`, '');
    return;
  }
  if (req.method !== 'POST') {
    page(res, 405, 'Method not allowed', '');
    return;
  }
  const form = await readForm(req);
  if (action === 'login' && prompt === 'login') {
    const user = userByEmail(form.get('email'));
    if (!user || (user.password && user.password !== form.get('password'))) {
      loginForm(res, uid, { error: 'Unknown email or wrong password.', email: form.get('email') });
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm' && prompt === 'consent') {
    await provider.interactionFinished(req, res, { consent: await grantConsent(details) }, { mergeWithLastSubmission: true });
    return;
  }
  page(res, 400, `Cannot ${action} during the ${prompt} prompt`, '');
}

const providerCallback = provider.callback();

const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) {
    providerCallback(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (error) {
    console.error(`[oidc] interaction failed: ${error?.stack ?? error}`);
    if (!res.headersSent) page(res, 400, 'Sign-in failed', `<p>${escapeHtml(error?.message)}</p>`);
  }
});

server.listen(port, args.host, () => {
  console.log(`test OIDC provider: ${issuer} (client ${args['client-id']}, users from ${args.users})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
