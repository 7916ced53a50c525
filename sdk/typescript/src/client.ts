// The open APIs with a token. An expired access token (by its expires_in, or a 401 from
// the server) is renewed once per call, with the refresh token (whose rotated successor
// goes to onRefresh: store it, the old one is spent) or, for a client's own token, with
// its client credentials.

import { readAnswer } from "./errors.js";
import type { OpenActivityPage, OpenMember, OpenNewsPage, OpenNewsRead, OpenWallet } from "./models.js";
import { expired, type OAuth, type TokenSet } from "./oauth.js";

export interface OpenClientOptions {
  /** Called with the renewed tokens (the rotated refresh token among them). */
  onRefresh?: (tokens: TokenSet) => void | Promise<void>;
  /** A client's own token: renewed with its client credentials for this scope. */
  clientScope?: string;
}

export interface PageQuery {
  before?: number;
  limit?: number;
}

export interface NewsQuery {
  cursor?: string;
  limit?: number;
}

/** /open/v1 for a member's token (from OAuth.exchangeCode) or a client's own
 * (OpenClient.withClientCredentials). */
export class OpenClient {
  #tokens: TokenSet;

  constructor(
    readonly oauth: OAuth,
    tokens: TokenSet,
    readonly options: OpenClientOptions = {},
  ) {
    this.#tokens = tokens;
  }

  static async withClientCredentials(
    oauth: OAuth,
    scope = "activities:read",
    options: Omit<OpenClientOptions, "clientScope"> = {},
  ): Promise<OpenClient> {
    return new OpenClient(oauth, await oauth.clientCredentials(scope), { ...options, clientScope: scope });
  }

  get tokens(): TokenSet {
    return this.#tokens;
  }

  private get renewable(): boolean {
    return this.#tokens.refreshToken !== undefined || this.options.clientScope !== undefined;
  }

  private async renew(): Promise<void> {
    const current = this.#tokens;
    let renewed: TokenSet;
    if (current.refreshToken !== undefined) {
      renewed = await this.oauth.refresh(current.refreshToken);
      if (renewed.refreshToken === undefined) renewed = { ...renewed, refreshToken: current.refreshToken };
    } else if (this.options.clientScope !== undefined) {
      renewed = await this.oauth.clientCredentials(this.options.clientScope);
    } else {
      return;
    }
    this.#tokens = renewed;
    await this.options.onRefresh?.(renewed);
  }

  private send(path: string, query: Record<string, number | string>): Promise<Response> {
    const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    const search = params.toString();
    const url = `${this.oauth.discovery.issuer}${path}${search ? `?${search}` : ""}`;
    const headers = { Authorization: `Bearer ${this.#tokens.accessToken}`, Accept: "application/json" };
    return this.oauth.fetch(url, { headers });
  }

  /** GET an open API's path: its JSON, or the error it answers thrown. */
  async get(path: string, query: Record<string, number | string> = {}): Promise<unknown> {
    if (expired(this.#tokens) && this.renewable) await this.renew();
    let answer = await this.send(path, query);
    if (answer.status === 401 && this.renewable) {
      await answer.body?.cancel();
      await this.renew();
      answer = await this.send(path, query);
    }
    return readAnswer(answer);
  }

  async me(): Promise<OpenMember> {
    return (await this.get("/open/v1/me")) as OpenMember;
  }

  /** benefits:read: the member's points, vouchers (without codes) and prizes. */
  async benefits(): Promise<OpenWallet> {
    return (await this.get("/open/v1/me/benefits")) as OpenWallet;
  }

  /** activities:read (a client's own token): one page, newest first. */
  async activities(query: PageQuery = {}): Promise<OpenActivityPage> {
    const params: Record<string, number> = {};
    if (query.before !== undefined) params["before"] = query.before;
    if (query.limit !== undefined) params["limit"] = query.limit;
    return (await this.get("/open/v1/activities", params)) as OpenActivityPage;
  }

  /** Every page of activities(), following next_before. */
  async *activityPages(query: { limit?: number } = {}): AsyncGenerator<OpenActivityPage> {
    let before: number | null = null;
    do {
      const page: OpenActivityPage = await this.activities(before === null ? query : { ...query, before });
      yield page;
      before = page.next_before;
    } while (before !== null);
  }

  /** news:read (a client's own token): one page of the published news and notices of the
   * client's org and below, newest first. */
  async news(query: NewsQuery = {}): Promise<OpenNewsPage> {
    const params: Record<string, number | string> = {};
    if (query.cursor !== undefined) params["cursor"] = query.cursor;
    if (query.limit !== undefined) params["limit"] = query.limit;
    return (await this.get("/open/v1/news", params)) as OpenNewsPage;
  }

  /** Every page of news(), following next_cursor. */
  async *newsPages(query: { limit?: number } = {}): AsyncGenerator<OpenNewsPage> {
    let cursor: string | null = null;
    do {
      const page: OpenNewsPage = await this.news(cursor === null ? query : { ...query, cursor });
      yield page;
      cursor = page.next_cursor;
    } while (cursor !== null);
  }

  /** news:read: one published item with its sanitised body_html. */
  async newsItem(newsId: number): Promise<OpenNewsRead> {
    return (await this.get(`/open/v1/news/${Math.trunc(newsId)}`)) as OpenNewsRead;
  }
}
