// Hello union: a union app's page that signs a member in with their union account (OpenID
// Connect, authorization code + PKCE, through the SDK) and lists the activities of their
// union and the unions above it. Node's own http server serves it:
//
//   npm run build
//   GONGHUI_ISSUER=http://127.0.0.1:8000 GONGHUI_CLIENT_ID=ghoc_... GONGHUI_CLIENT_SECRET=... \
//     node dist/examples/hello-union.js       # then open http://127.0.0.1:8765/
//
// The client: confidential, registered with the redirect URI http://127.0.0.1:8765/callback
// (HELLO_PORT changes the port) and the scope "openid membership activities:read".

import { webcrypto } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";

import { type AuthorizationRequest, OAuth, OAuthError, type OpenActivityRead, OpenClient } from "../src/index.js";

const port = Number(process.env["HELLO_PORT"] ?? "8765");
const oauth = await OAuth.discover(process.env["GONGHUI_ISSUER"] ?? "http://127.0.0.1:8000", {
  clientId: process.env["GONGHUI_CLIENT_ID"] ?? "",
  clientSecret: process.env["GONGHUI_CLIENT_SECRET"] ?? "",
  redirectUri: `http://127.0.0.1:${port}/callback`,
  crypto: webcrypto, // Node 18's; Node 20 and browsers have globalThis.crypto
});
// Sign-ins under way, by the browser that started them (its cookie): the callback must come
// back to the browser that left, with the state, nonce and PKCE verifier kept here.
const pending = new Map<string, AuthorizationRequest>();

const escape = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { "Content-Type": "text/html; charset=utf-8" });
  response.end(`<!doctype html><meta charset="utf-8"><title>你好，工会</title>${body}`);
}

/** The app's published activities (its own token) that the member's unions run. */
async function unionActivities(orgChain: string[]): Promise<OpenActivityRead[]> {
  const backEnd = await OpenClient.withClientCredentials(oauth, "activities:read");
  const found: OpenActivityRead[] = [];
  for await (const activities of backEnd.activityPages()) found.push(...activities.items);
  return found.filter((a) => orgChain.includes(a.org_name));
}

const server = createServer(async (request, response) => {
  const url = new URL(request.url ?? "/", `http://127.0.0.1:${port}`);
  if (url.pathname === "/") {
    const browser = webcrypto.randomUUID();
    const signIn = await oauth.authorizationRequest("openid membership");
    pending.set(browser, signIn);
    response.writeHead(302, {
      Location: signIn.url,
      "Set-Cookie": `hello=${browser}; HttpOnly; SameSite=Lax; Path=/`,
    });
    response.end();
    return;
  }
  if (url.pathname !== "/callback") return page(response, 404, "<p>没有这个页面。</p>");
  const browser = /(?:^|;\s*)hello=([^;]+)/.exec(request.headers.cookie ?? "")?.[1] ?? "";
  const signIn = pending.get(browser);
  pending.delete(browser);
  if (signIn === undefined) return page(response, 400, '<p>请从<a href="/">首页</a>登录。</p>');
  try {
    const tokens = await oauth.exchangeCode(url.search, signIn);
    const membership = (await new OpenClient(oauth, tokens).me()).membership;
    const items = (await unionActivities(membership?.org_chain ?? []))
      .map((a) => `<li>${escape(a.title)}（${escape(a.org_name)}，${a.status}）</li>`)
      .join("");
    const name = membership?.union ? escape(membership.union.name) : "会员";
    return page(response, 200, `<h1>你好，${name}的会员</h1><ul>${items}</ul>`);
  } catch (error) {
    if (error instanceof OAuthError) return page(response, 403, `<p>没有登录：${escape(error.error)}</p>`);
    throw error;
  }
});

server.listen(port, "127.0.0.1", () => console.log(`hello union on http://127.0.0.1:${port}/`));
