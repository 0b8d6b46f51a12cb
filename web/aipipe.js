// aipipe.js — sign users in to AI Pipe from any web page and use their token.
//
//   import { getProfile, login, logout } from "https://YOUR-AIPIPE-HOST/aipipe.js";
//   const { token, email } = getProfile();
//   if (!token) login();  // to the AI Pipe sign-in page, and back here with the token
//
// After sign-in, /login sends the browser back to this page with the profile in the URL
// fragment (#aipipe_token=...&aipipe_email=...). getProfile() takes it, keeps it in
// localStorage["aipipe"], and removes only the aipipe_* parameters from the address bar.

/** This AI Pipe deployment's origin: where this module was loaded from. */
export const baseUrl = new URL(".", import.meta.url).href.replace(/\/$/, "");

const STORAGE_KEY = "aipipe";
const PREFIX = "aipipe_";

// Split "a=1&aipipe_token=x&b" into the aipipe_* values and the rest, left exactly as written.
function splitParams(text) {
  const found = {};
  const rest = [];
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    let key;
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, " "));
    } catch {
      key = rawKey;
    }
    if (key.startsWith(PREFIX)) {
      const raw = eq < 0 ? "" : part.slice(eq + 1);
      try {
        found[key.slice(PREFIX.length)] = decodeURIComponent(raw.replace(/\+/g, " "));
      } catch {
        found[key.slice(PREFIX.length)] = raw;
      }
    } else {
      rest.push(part);
    }
  }
  return { found, rest: rest.join("&") };
}

function readStored() {
  try {
    const profile = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    return profile && typeof profile === "object" ? profile : {};
  } catch {
    return {};
  }
}

/**
 * The signed-in user's profile: {token, email, ...}, or {} when not signed in.
 * Reads aipipe_* parameters from the URL (query or fragment), stores them in
 * localStorage["aipipe"], and removes them from the address bar, keeping every other
 * parameter and the rest of the fragment.
 */
export function getProfile() {
  const url = new URL(window.location.href);
  const query = splitParams(url.search.replace(/^\?/, ""));
  const hash = splitParams(url.hash.replace(/^#/, ""));
  const fromUrl = { ...query.found, ...hash.found };
  if (Object.keys(query.found).length || Object.keys(hash.found).length) {
    const clean =
      url.origin + url.pathname + (query.rest ? "?" + query.rest : "") + (hash.rest ? "#" + hash.rest : "");
    window.history.replaceState(window.history.state, "", clean);
  }
  if (fromUrl.token) {
    // A fresh sign-in replaces whatever was stored (it may be another user).
    localStorage.setItem(STORAGE_KEY, JSON.stringify(fromUrl));
    return fromUrl;
  }
  return readStored();
}

/**
 * Send the browser to AI Pipe's sign-in page; it comes back to `redirect` (default: this
 * page) with the token. Pages on other origins are asked to approve on the sign-in page
 * unless the operator allows them.
 */
export function login({ redirect = window.location.href } = {}) {
  window.location.href = `${baseUrl}/login?redirect=${encodeURIComponent(redirect)}`;
}

/** Forget the token on this site. Returns the profile that was removed (or {}). */
export function logout() {
  const profile = readStored();
  localStorage.removeItem(STORAGE_KEY);
  return profile;
}
