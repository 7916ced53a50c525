// The TypeScript SDK against the real server, run by tests/sdk/test_typescript_sdk.py, which
// starts the server, registers the clients, signs a member in on the H5 (their cookies) and
// publishes activities, and passes them here in GONGHUI_* variables.

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { test } from "node:test";

import { ApiError, InvalidTokenError, OAuth, OAuthError, OpenClient, type TokenSet } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: these tests run from tests/sdk/test_typescript_sdk.py`);
  return value;
}

const server = env("GONGHUI_SERVER");
const redirectUri = env("GONGHUI_REDIRECT_URI");
const memberCookie = env("GONGHUI_MEMBER_COOKIE");
const memberScope = env("GONGHUI_MEMBER_SCOPE");
const activityTitles = JSON.parse(env("GONGHUI_ACTIVITY_TITLES")) as string[];
// Node 18 has WebCrypto as node:crypto's webcrypto; browsers and Node 20 as globalThis.crypto.
const crypto = webcrypto;

/** The H5 in the member's phone: open the sign-in URL with their cookies and, on the consent
 * screen, answer `decision`. The answer: where the provider sends the member back. */
async function authorize(url: string, decision = "allow"): Promise<string> {
  const page = await fetch(url, { headers: { cookie: memberCookie }, redirect: "manual" });
  const location = page.headers.get("location");
  if (location !== null) return location; // consent given before
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  const fields = [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(
    ([, name, value]) => [name ?? "", (value ?? "").replaceAll("&#34;", '"').replaceAll("&amp;", "&")],
  );
  const cookies = [memberCookie, ...page.headers.getSetCookie().map((c) => c.split(";")[0])];
  const back = await fetch(`${server}/h5/oauth/authorize`, {
    method: "POST",
    headers: { cookie: cookies.join("; "), "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams([...fields, ["decision", decision]]).toString(),
    redirect: "manual",
  });
  assert.ok([302, 303].includes(back.status), await back.text());
  return back.headers.get("location") ?? "";
}

/** The H5's client: public, no secret. */
function h5(): Promise<OAuth> {
  return OAuth.discover(server, { clientId: env("GONGHUI_PUBLIC_CLIENT_ID"), redirectUri, crypto });
}

/** A union app's back end: confidential, with its secret. */
function backEnd(): Promise<OAuth> {
  const clientSecret = env("GONGHUI_CLIENT_SECRET");
  return OAuth.discover(server, { clientId: env("GONGHUI_CLIENT_ID"), clientSecret, redirectUri, crypto });
}

async function signIn(oauth: OAuth): Promise<TokenSet> {
  const request = await oauth.authorizationRequest(memberScope);
  return oauth.exchangeCode(await authorize(request.url), request);
}

test("a member signs in to the H5 with PKCE and it reads them and their wallet", async () => {
  const oauth = await h5();
  const request = await oauth.authorizationRequest(memberScope);
  assert.ok(request.url.startsWith(`${server}/h5/oauth/authorize?`));
  assert.equal(new URL(request.url).searchParams.get("code_challenge_method"), "S256");
  const tokens = await oauth.exchangeCode(await authorize(request.url), request);
  assert.deepEqual(tokens.scope.split(" ").sort(), memberScope.split(" ").sort());
  assert.equal(tokens.idClaims?.["nonce"], request.nonce);
  assert.ok(tokens.refreshToken);

  const client = new OpenClient(oauth, tokens);
  const me = await client.me();
  assert.equal(me.sub, tokens.idClaims?.["sub"]);
  assert.equal(me.membership?.verified, true);
  assert.deepEqual(me.membership?.union, { code: "GZ-TH-01", name: "天河软件园工会" });
  const wallet = await client.benefits();
  assert.equal(wallet.points, 30);
  assert.deepEqual(wallet.vouchers.map((v) => [v.name, v.value_cents]), [["十元券", 1000]]);
});

test("a callback of another sign-in is not exchanged", async () => {
  const oauth = await h5();
  const first = await oauth.authorizationRequest("openid");
  const second = await oauth.authorizationRequest("openid");
  const callback = await authorize(first.url);
  await assert.rejects(oauth.exchangeCode(callback, second), (e) => e instanceof OAuthError && e.error === "invalid_state");
});

test("an expired token is renewed and the rotated refresh token handed back; the spent one is refused", async () => {
  const oauth = await h5();
  const tokens = await signIn(oauth);
  const handed: TokenSet[] = [];
  const client = new OpenClient(oauth, { ...tokens, expiresAt: 0 }, { onRefresh: (t) => void handed.push(t) });
  assert.equal((await client.me()).sub, tokens.idClaims?.["sub"]);
  assert.equal(handed.length, 1);
  assert.ok(handed[0]?.refreshToken && handed[0].refreshToken !== tokens.refreshToken);
  assert.equal(client.tokens, handed[0]);

  await assert.rejects(
    oauth.refresh(tokens.refreshToken ?? ""),
    (e) => e instanceof OAuthError && e.error === "invalid_grant" && e.status === 400,
  );
});

test("a revoked sign-in reads nothing", async () => {
  const oauth = await h5();
  const { refreshToken, ...tokens } = await signIn(oauth);
  await oauth.revoke(refreshToken ?? "", "refresh_token");
  await assert.rejects(
    new OpenClient(oauth, tokens).me(),
    (e) => e instanceof InvalidTokenError && e.status === 401 && e.code === "openplatform.token_invalid",
  );
});

test("a back end pages through its union's activities with its own token", async () => {
  const client = await OpenClient.withClientCredentials(await backEnd());
  assert.equal(client.tokens.scope, "activities:read");
  const pages = [];
  for await (const page of client.activityPages({ limit: 2 })) pages.push(page);
  assert.deepEqual(
    pages.map((p) => p.items.map((a) => a.title)),
    [activityTitles.slice(0, 2), activityTitles.slice(2)],
  );
  assert.equal(pages.at(-1)?.next_before, null);
});

test("a back end reads its union's news page by page", async () => {
  const newsIds = JSON.parse(env("GONGHUI_NEWS_IDS")) as number[];
  const client = await OpenClient.withClientCredentials(await backEnd(), "news:read");
  const pages = [];
  for await (const page of client.newsPages({ limit: 1 })) pages.push(page);
  assert.deepEqual(
    pages.map((p) => p.items.map((n) => n.id)),
    newsIds.map((id) => [id]),
  );
  const item = await client.newsItem(newsIds.at(-1) ?? 0);
  assert.equal(item.body_html, "<p>全市职工运动会将于下月举行。</p>");
  await assert.rejects(
    client.newsItem((newsIds[0] ?? 0) + 100),
    (e) => e instanceof ApiError && e.status === 404 && e.code === "news.not_found",
  );
});

test("a refusal carries the envelope's status, code and details", async () => {
  const oauth = await backEnd();
  const client = new OpenClient(oauth, await signIn(oauth));
  await assert.rejects(
    client.activities(),
    (e) =>
      e instanceof ApiError &&
      e.status === 403 &&
      e.code === "openplatform.insufficient_scope" &&
      JSON.stringify(e.details) === JSON.stringify({ scope: "activities:read" }),
  );
});
