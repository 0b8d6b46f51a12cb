"""The relay's own endpoints (everything but provider forwarding): sign-in, usage, admin, prices,
/similarity, /proxy, health and the browser pages."""
