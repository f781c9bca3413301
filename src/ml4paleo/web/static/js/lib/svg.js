// SVG elements for the pages' small charts.

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element `tag` with `attrs` and, if given, its text. */
export function svgNode(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}
