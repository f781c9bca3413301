// DOM helpers: build elements (text, never HTML), the flash bar, guarded UI actions, images.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Create an element with properties and children; strings become text nodes (never HTML). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Show an error in the page's flash bar (as text, never HTML). */
export function flash(message) {
  const bar = document.getElementById("flash");
  if (!bar) return;
  bar.textContent = message;
  bar.hidden = !message;
  if (message) {
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { bar.hidden = true; }, 8000);
  }
}

/** Run an async UI action; report its error in the flash bar instead of the console. */
export async function guarded(action) {
  try {
    return await action();
  } catch (err) {
    flash(err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

/** Call `fn` now and every `ms` milliseconds while it returns true (slower while the tab is
 * hidden); errors are shown in the flash bar and polling goes on. Returns a function that stops it. */
export function poll(fn, ms = 1500) {
  let stopped = false;
  let timer;
  const tick = async () => {
    let again = true;
    try { again = (await fn()) !== false; } catch (err) { flash(err.message); }
    if (again && !stopped) timer = setTimeout(tick, document.hidden ? ms * 3 : ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** An <img> loaded from ``url`` (rejects with the url when it cannot be loaded). */
export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${url}`));
    img.src = url;
  });
}
