// Colours of label classes: a palette for classes the server does not colour, "#rrggbb" → RGB,
// and RGBA lookup tables for painting label images.

/** Colours by class value for classes without one (value 1 background, 2.. structures); also
 * the colours offered to a new class. The default classes' own colours come from /api/enums. */
export const PALETTE = ["#000000", "#4c9be8", "#f59e0b", "#e5484d", "#30a46c", "#8e4ec6", "#12a594", "#d6409f", "#f76b15", "#94ba2c"];

/** A class's colour: its own, else the palette's for its value. */
export function classColor(cls) {
  return cls.color || PALETTE[cls.value % PALETTE.length];
}

/** "#rrggbb" → [r, g, b] (magenta for anything else). */
export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

/** A 256-entry RGBA table (Uint8Array of 1024) from [[index, "#rrggbb"], ...]; other entries
 * are transparent black. */
export function rgbaTable(entries) {
  const table = new Uint8Array(256 * 4);
  for (const [index, hex] of entries) {
    if (index < 0 || index > 255) continue;
    table.set([...hexToRgb(hex), 255], index * 4);
  }
  return table;
}
