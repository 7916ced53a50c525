// Sign a member in with OpenID Connect (authorization code + PKCE S256 by WebCrypto, state
// and nonce), and the token endpoint's other grants: refresh (rotating the refresh token),
// client credentials (a back end's own token), revocation.

import { decode, encode, encodeStandard } from "./base64url.js";
import { OAuthError, readAnswer } from "./errors.js";

/** An access token this close to its expiry counts as expired (the clocks may differ). */
export const EXPIRY_LEEWAY_MS = 30_000;

/** What the token endpoint issued; `expiresAt` in this machine's milliseconds. */
export interface TokenSet {
  accessToken: string;
  expiresAt: number;
  scope: string;
  tokenType: string;
  refreshToken?: string;
  idToken?: string;
  /** The id_token's claims, checked against the sign-in's nonce (when one came). */
  idClaims?: Record<string, unknown>;
}

export function expired(tokens: TokenSet, now: number = Date.now()): boolean {
  return now >= tokens.expiresAt - EXPIRY_LEEWAY_MS;
}

/** Where to send the member, and what to keep (in their session) for the callback. */
export interface AuthorizationRequest {
  url: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The provider's /.well-known/openid-configuration (the fields this SDK uses). */
export interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint: string;
  revocation_endpoint: string;
  jwks_uri: string;
  [field: string]: unknown;
}

/** The WebCrypto this SDK needs: globalThis.crypto in browsers and Node 20; a mini
 * program passes its own (wx.getRandomValues and a SHA-256). */
export interface CryptoLike {
  getRandomValues<T extends Uint8Array>(array: T): T;
  subtle: { digest(algorithm: "SHA-256", data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> };
}

export interface OAuthOptions {
  clientId: string;
  /** A confidential client's (a back end's); never in an H5 or a mini program. */
  clientSecret?: string;
  redirectUri?: string;
  fetch?: typeof fetch;
  crypto?: CryptoLike;
}

export type Callback = string | URLSearchParams | Record<string, string>;

function randomString(crypto: CryptoLike, bytes: number): string {
  return encode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** A code verifier (RFC 7636 §4.1) and its S256 challenge. */
export async function pkcePair(crypto: CryptoLike = globalThis.crypto): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomString(crypto, 48);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: encode(new Uint8Array(digest)) };
}

function callbackParams(callback: Callback): URLSearchParams {
  if (typeof callback !== "string") return new URLSearchParams(callback);
  const query = callback.includes("?") ? callback.slice(callback.indexOf("?") + 1) : callback;
  return new URLSearchParams(query.split("#")[0]);
}

/** The id_token's payload. Its signature is not checked here: it came straight from the
 * token endpoint over the connection this client opened, which OpenID Connect Core
 * §3.1.3.7 (6) accepts in place of the signature; iss, aud and nonce are checked. */
function unverifiedClaims(idToken: string): Record<string, unknown> {
  const payload = idToken.split(".")[1] ?? "";
  return JSON.parse(new TextDecoder().decode(decode(payload))) as Record<string, unknown>;
}

function tokenSet(body: Record<string, unknown>): TokenSet {
  const tokens: TokenSet = {
    accessToken: String(body["access_token"]),
    expiresAt: Date.now() + Number(body["expires_in"] ?? 0) * 1000,
    scope: String(body["scope"] ?? ""),
    tokenType: String(body["token_type"] ?? "Bearer"),
  };
  if (typeof body["refresh_token"] === "string") tokens.refreshToken = body["refresh_token"];
  if (typeof body["id_token"] === "string") tokens.idToken = body["id_token"];
  return tokens;
}

/** One client of the provider: `await OAuth.discover(issuer, { clientId, ... })`. */
export class OAuth {
  readonly fetch: typeof fetch;
  readonly crypto: CryptoLike;

  constructor(
    readonly discovery: Discovery,
    readonly options: OAuthOptions,
  ) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.crypto = options.crypto ?? globalThis.crypto;
  }

  static async discover(issuer: string, options: OAuthOptions): Promise<OAuth> {
    const get = options.fetch ?? globalThis.fetch.bind(globalThis);
    const answer = await get(`${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`);
    return new OAuth((await readAnswer(answer)) as Discovery, options);
  }

  get clientId(): string {
    return this.options.clientId;
  }

  async authorizationRequest(scope: string, extra: Record<string, string> = {}): Promise<AuthorizationRequest> {
    const redirectUri = this.options.redirectUri;
    if (!redirectUri) throw new Error("a sign-in needs the client's redirectUri");
    const { verifier, challenge } = await pkcePair(this.crypto);
    const state = randomString(this.crypto, 24);
    const nonce = randomString(this.crypto, 24);
    const params = new URLSearchParams({
      response_type: "code",
      client_id: this.clientId,
      redirect_uri: redirectUri,
      scope,
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...extra,
    });
    return { url: `${this.discovery.authorization_endpoint}?${params}`, state, nonce, codeVerifier: verifier };
  }

  /** A back-channel POST, the client authenticated as it was registered: HTTP Basic with a
   * secret, or its client_id alone (a public client). */
  private async post(url: string, form: Record<string, string>): Promise<unknown> {
    const headers: Record<string, string> = {
      Accept: "application/json",
      "Content-Type": "application/x-www-form-urlencoded",
    };
    const body = new URLSearchParams(form);
    const secret = this.options.clientSecret;
    if (secret === undefined) {
      body.set("client_id", this.clientId);
    } else {
      headers["Authorization"] = `Basic ${encodeStandard(new TextEncoder().encode(`${this.clientId}:${secret}`))}`;
    }
    return readAnswer(await this.fetch(url, { method: "POST", headers, body: body.toString() }));
  }

  private async tokens(form: Record<string, string>, nonce?: string): Promise<TokenSet> {
    const tokens = tokenSet((await this.post(this.discovery.token_endpoint, form)) as Record<string, unknown>);
    if (tokens.idToken === undefined) return tokens;
    const claims = unverifiedClaims(tokens.idToken);
    const audience = claims["aud"];
    const audiences = Array.isArray(audience) ? audience : [audience];
    if (claims["iss"] !== this.discovery.issuer || !audiences.includes(this.clientId)) {
      throw new OAuthError("invalid_id_token", "the id_token is not for this client");
    }
    if (nonce !== undefined && claims["nonce"] !== nonce) {
      throw new OAuthError("invalid_nonce", "the id_token's nonce is not this sign-in's");
    }
    return { ...tokens, idClaims: claims };
  }

  /** Exchange the code the callback (its URL or query) carries, once its state matches. */
  async exchangeCode(callback: Callback, request: AuthorizationRequest): Promise<TokenSet> {
    const params = callbackParams(callback);
    const error = params.get("error");
    if (error !== null) throw new OAuthError(error, params.get("error_description"));
    if (params.get("state") !== request.state) {
      throw new OAuthError("invalid_state", "the callback's state is not this sign-in's");
    }
    const code = params.get("code");
    if (code === null) throw new OAuthError("invalid_request", "the callback carries no code");
    const form = {
      grant_type: "authorization_code",
      code,
      redirect_uri: this.options.redirectUri ?? "",
      code_verifier: request.codeVerifier,
    };
    return this.tokens(form, request.nonce);
  }

  /** New tokens; the refresh token is rotated (keep the new one, the old one is spent). */
  async refresh(refreshToken: string, scope?: string): Promise<TokenSet> {
    const form: Record<string, string> = { grant_type: "refresh_token", refresh_token: refreshToken };
    if (scope !== undefined) form["scope"] = scope;
    return this.tokens(form);
  }

  /** A confidential client's back end: a token of its own (no member). */
  async clientCredentials(scope: string): Promise<TokenSet> {
    if (this.options.clientSecret === undefined) {
      throw new Error("client credentials need a confidential client's secret");
    }
    return this.tokens({ grant_type: "client_credentials", scope });
  }

  /** RFC 7009: a refresh token takes its access tokens with it. */
  async revoke(token: string, tokenTypeHint?: "access_token" | "refresh_token"): Promise<void> {
    const form: Record<string, string> = { token };
    if (tokenTypeHint !== undefined) form["token_type_hint"] = tokenTypeHint;
    await this.post(this.discovery.revocation_endpoint, form);
  }
}
