// What a refusal becomes: the open APIs' one envelope as ApiError (429 as RateLimitedError
// with its Retry-After), OAuth's back channel's own format (RFC 6749 §5.2) and a refused
// sign-in as OAuthError.

/** Every error this SDK throws. */
export class GonghuiError extends Error {}

/** `{"error": {"code", "message", "details"}}` with its HTTP status. */
export class ApiError extends GonghuiError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = new.target.name;
  }
}

/** 401: the access token is missing, unknown, expired or revoked. */
export class InvalidTokenError extends ApiError {}

/** 429: too many calls; `retryAfter` seconds (Retry-After) until the next. */
export class RateLimitedError extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    details: unknown,
    readonly retryAfter: number | null,
  ) {
    super(status, code, message, details);
  }
}

/** The provider refused (invalid_grant, access_denied...) or its answer does not hold (a
 * state or nonce that does not match). */
export class OAuthError extends GonghuiError {
  constructor(
    readonly error: string,
    readonly description: string | null = null,
    readonly status: number | null = null,
  ) {
    super(description ? `${error}: ${description}` : error);
    this.name = "OAuthError";
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The answer's JSON, or the error it carries thrown. */
export async function readAnswer(response: Response): Promise<unknown> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const error = isRecord(body) ? body["error"] : undefined;
  if (typeof error === "string" && isRecord(body)) {
    const description = body["error_description"];
    throw new OAuthError(error, typeof description === "string" ? description : null, response.status);
  }
  const status = response.status;
  const code = isRecord(error) ? String(error["code"]) : `http.${status}`;
  const message = isRecord(error) ? String(error["message"]) : text.slice(0, 200);
  const details = isRecord(error) ? (error["details"] ?? null) : null;
  if (status === 429) {
    const after = response.headers.get("retry-after") ?? "";
    throw new RateLimitedError(status, code, message, details, /^\d+$/.test(after) ? Number(after) : null);
  }
  if (status === 401) throw new InvalidTokenError(status, code, message, details);
  throw new ApiError(status, code, message, details);
}
