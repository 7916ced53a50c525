// The gonghui open platform from TypeScript: sign a member in with OpenID Connect (OAuth)
// and read the open APIs (OpenClient). Result types are generated from
// /open/v1/openapi.json (models.ts, by sdk/generate.py).

export { type NewsQuery, OpenClient, type OpenClientOptions, type PageQuery } from "./client.js";
export { ApiError, GonghuiError, InvalidTokenError, OAuthError, RateLimitedError } from "./errors.js";
export type * from "./models.js";
export {
  type AuthorizationRequest,
  type Callback,
  type CryptoLike,
  type Discovery,
  expired,
  OAuth,
  type OAuthOptions,
  pkcePair,
  type TokenSet,
} from "./oauth.js";
