// Runs in <head>, before the first paint, so a page never flashes the wrong theme or says
// "Sign in" to a signed-in user while its Python starts. It only sets attributes on <html>
// (read by aipipe.css); the page's Python (web/py/pagekit.py) owns the behaviour afterwards.
(() => {
  const root = document.documentElement;
  const read = (key) => { try { return localStorage.getItem(key); } catch { return null; } };
  const system = matchMedia("(prefers-color-scheme: dark)");
  const theme = () => {
    const chosen = read("aipipe-theme");
    root.dataset.theme = chosen === "dark" || chosen === "light" ? chosen
      : (system.matches ? "dark" : "light");
  };
  theme();
  system.addEventListener("change", theme);
  let profile = null;
  try { profile = JSON.parse(read("aipipe") || "null"); } catch { profile = null; }
  const email = profile && typeof profile.email === "string" && profile.token ? profile.email : "";
  root.dataset.auth = email ? "in" : "out";
  if (email) {
    // Shown by CSS until Python writes the same text into the header.
    root.style.setProperty("--who", JSON.stringify(email));
    root.style.setProperty("--initial", JSON.stringify(email.charAt(0).toUpperCase()));
    if (read("aipipe-admin") === email) root.dataset.admin = "yes";
  }
})();
