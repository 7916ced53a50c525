"""The open platform: OAuth 2.0 / OpenID Connect provider for union apps and services.

- :mod:`.clients`: apps an org registers (secrets shown once, redirect URIs, scopes);
- :mod:`.keys`: the provider's signing keys, their rotation and the JWKS;
- :mod:`.provider`: authorization code with PKCE, refresh rotation, client credentials,
  revocation, introspection and ``id_token``s, on Authlib's authorization server;
- :mod:`.identity`: what a client learns of a member (pairwise subject, claims by scope);
- :mod:`.resource`: bearer tokens presented to the open APIs;
- :mod:`.webhooks`: a client's endpoints for the union's events, as Standard Webhooks on the
  triggers' delivery engine.
"""
