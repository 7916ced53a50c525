"""Hello union: a union app's page that signs a member in with their union account
(OpenID Connect, authorization code + PKCE, through ``gonghui_sdk``) and lists the
activities of their union and the unions above it.

    GONGHUI_ISSUER=http://127.0.0.1:8000 GONGHUI_CLIENT_ID=ghoc_... GONGHUI_CLIENT_SECRET=... \\
        python sdk/python/examples/hello_union.py      # then open http://127.0.0.1:8765/

The client: confidential, registered by the union's developer with the redirect URI
``http://127.0.0.1:8765/callback`` (``HELLO_PORT`` changes the port) and the scope
``openid membership activities:read``. The standard library serves the page.
"""

from __future__ import annotations

import html
import os
import secrets
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from gonghui_sdk import AuthorizationRequest, OAuth, OAuthError, OpenActivityRead, OpenClient

PORT = int(os.environ.get("HELLO_PORT", "8765"))
OAUTH = OAuth.discover(
    os.environ["GONGHUI_ISSUER"],
    client_id=os.environ["GONGHUI_CLIENT_ID"],
    client_secret=os.environ["GONGHUI_CLIENT_SECRET"],
    redirect_uri=f"http://127.0.0.1:{PORT}/callback",
)
# Sign-ins under way, by the browser that started them (its cookie): the callback must come
# back to the browser that left, with the state, nonce and PKCE verifier kept here.
PENDING: dict[str, AuthorizationRequest] = {}


def union_activities(org_chain: list[str]) -> list[OpenActivityRead]:
    """The app's published activities (its own token) that the member's unions run."""
    back_end = OpenClient.with_client_credentials(OAUTH, "activities:read")
    found = [a for page in back_end.activity_pages() for a in page["items"]]
    return [a for a in found if a["org_name"] in org_chain]


class HelloUnion(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/":
            self.sign_in()
        elif path == "/callback":
            self.callback()
        else:
            self.send_error(404)

    def sign_in(self) -> None:
        browser = secrets.token_urlsafe(16)
        PENDING[browser] = request = OAUTH.authorization_request("openid membership")
        self.send_response(302)
        self.send_header("Location", request.url)
        self.send_header("Set-Cookie", f"hello={browser}; HttpOnly; SameSite=Lax; Path=/")
        self.end_headers()

    def callback(self) -> None:
        cookie = SimpleCookie(self.headers.get("Cookie", "")).get("hello")
        request = PENDING.pop(cookie.value, None) if cookie else None
        if request is None:
            return self.page(400, '<p>请从<a href="/">首页</a>登录。</p>')
        try:
            tokens = OAUTH.exchange_code(self.path, request)
        except OAuthError as refused:
            return self.page(403, f"<p>没有登录：{html.escape(refused.error)}</p>")
        membership = OpenClient(OAUTH, tokens).me().get("membership")
        union = membership.get("union") if membership else None
        chain = (membership.get("org_chain") if membership else None) or []
        items = "".join(
            f"<li>{html.escape(a['title'])}（{html.escape(a['org_name'])}，{a['status']}）</li>"
            for a in union_activities(chain)
        )
        name = html.escape(union["name"]) if union else "会员"
        return self.page(200, f"<h1>你好，{name}的会员</h1><ul>{items}</ul>")

    def page(self, status: int, body: str) -> None:
        data = f'<!doctype html><meta charset="utf-8"><title>你好，工会</title>{body}'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"hello union on http://127.0.0.1:{PORT}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), HelloUnion).serve_forever()
