// The front end of cnnlib.demo_widgets.DrawDigit: a grid of cells on a <canvas>, drawn on
// like a pencil with a mouse, a pen or a finger (pointer events).
//
// - pointerdown starts a stroke and inks the cell under the pointer; pointermove while the
//   stroke lasts inks every cell the pointer's path crosses since the last event (a fast
//   stroke leaves no gaps); pointerup, pointerleave or pointercancel ends it.
// - A stroke erases instead when it starts with the right mouse button, a pen's eraser, Shift
//   held, or the `eraser` trait on (the pad's Eraser toggle: the way to erase on a touch screen).
// - The drawing lives in the `mask` trait (cells * cells ints, 0 or 1, row by row). Every
//   change is sent to Python at most once per animation frame and at the end of each stroke;
//   Python reclassifies on each. ipywidgets itself keeps one message in flight and merges the
//   rest, so a slow kernel never falls behind a stroke. When Python changes `mask` (Clear, an
//   example, a scripted cell), the grid is redrawn from it.

const GAP = 1; // px of grid line between cells and around the grid

// Calls visit(col, row) for each grid cell that the segment from (x0, y0) to (x1, y1)
// passes through, in order (coordinates in cell units: cell (c, r) covers [c, c+1) x [r, r+1)).
// A grid walk: step into whichever neighbour the segment reaches first, one cell at a time.
function walkCells(x0, y0, x1, y1, visit) {
  let col = Math.floor(x0);
  let row = Math.floor(y0);
  const endCol = Math.floor(x1);
  const endRow = Math.floor(y1);
  const dx = x1 - x0;
  const dy = y1 - y0;
  const stepCol = dx > 0 ? 1 : -1;
  const stepRow = dy > 0 ? 1 : -1;
  // Fraction of the segment it takes to cross one whole cell, along each axis.
  const perCol = dx !== 0 ? Math.abs(1 / dx) : Infinity;
  const perRow = dy !== 0 ? Math.abs(1 / dy) : Infinity;
  // Fraction of the segment at which it next crosses a vertical / horizontal grid line.
  let nextCol = dx > 0 ? (col + 1 - x0) * perCol : dx < 0 ? (x0 - col) * perCol : Infinity;
  let nextRow = dy > 0 ? (row + 1 - y0) * perRow : dy < 0 ? (y0 - row) * perRow : Infinity;
  visit(col, row);
  let left = Math.abs(endCol - col) + Math.abs(endRow - row);
  while (left-- > 0) {
    // Rounding must never carry the walk past the end cell along either axis.
    const alongCol = row === endRow || (col !== endCol && nextCol < nextRow);
    if (alongCol) {
      col += stepCol;
      nextCol += perCol;
    } else {
      row += stepRow;
      nextRow += perRow;
    }
    visit(col, row);
  }
}

function render({ model, el }) {
  const n = model.get("cells");
  const size = model.get("cell_px");
  const pitch = size + GAP;
  const side = n * pitch + GAP; // CSS px
  const ink = model.get("ink");
  const paper = model.get("paper");
  const line = model.get("line");
  let cells = Uint8Array.from(model.get("mask"));

  const canvas = document.createElement("canvas");
  canvas.className = "cnnlib-drawpad";
  canvas.dataset.cells = String(n);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `drawing pad, ${n} by ${n} cells`);
  Object.assign(canvas.style, {
    width: `${side}px`,
    height: `${side}px`,
    display: "block",
    touchAction: "none", // a finger draws; it does not scroll or zoom the page
    userSelect: "none",
    cursor: "crosshair",
  });
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(side * scale);
  canvas.height = Math.round(side * scale);
  const ctx = canvas.getContext("2d");
  ctx.scale(scale, scale);
  el.appendChild(canvas);

  function paintCell(k) {
    ctx.fillStyle = cells[k] ? ink : paper;
    ctx.fillRect(GAP + (k % n) * pitch, GAP + Math.floor(k / n) * pitch, size, size);
  }
  function paintAll() {
    ctx.fillStyle = line;
    ctx.fillRect(0, 0, side, side);
    for (let k = 0; k < n * n; k++) paintCell(k);
  }
  paintAll();

  // -- sending the drawing to Python ------------------------------------------------------
  let dirty = false;
  let frame = 0;
  function flush() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    if (!dirty) return;
    dirty = false;
    model.set("mask", Array.from(cells));
    model.save_changes();
  }
  function scheduleFlush() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  // -- strokes ----------------------------------------------------------------------------
  let stroke = null; // {id: pointerId, value: 1 ink or 0 erase, x, y: last point in cells}

  function toCells(event) {
    // CSS px -> cell units; the box may be scaled (browser zoom, CSS transforms).
    const box = canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) * side) / box.width;
    const y = ((event.clientY - box.top) * side) / box.height;
    return [(x - GAP / 2) / pitch, (y - GAP / 2) / pitch];
  }

  function setCell(col, row) {
    if (col < 0 || row < 0 || col >= n || row >= n) return;
    const k = row * n + col;
    if (cells[k] === stroke.value) return;
    cells[k] = stroke.value;
    paintCell(k);
    dirty = true;
  }

  function drawTo(x, y) {
    walkCells(stroke.x, stroke.y, x, y, setCell);
    stroke.x = x;
    stroke.y = y;
  }

  function onDown(event) {
    if (stroke) return; // a second finger does not start another stroke
    // Left (0) inks; right (2) and a pen's eraser (5) erase; other buttons do nothing.
    if (![0, 2, 5].includes(event.button)) return;
    event.preventDefault();
    const erase = event.button !== 0 || event.shiftKey || model.get("eraser");
    const [x, y] = toCells(event);
    stroke = { id: event.pointerId, value: erase ? 0 : 1, x, y };
    drawTo(x, y);
    scheduleFlush();
  }

  function onMove(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    if (event.pointerType === "mouse" && event.buttons === 0) {
      end(event); // released where we did not hear it
      return;
    }
    event.preventDefault();
    // Points the browser merged into this event, so a fast stroke keeps its shape.
    const points = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const p of points.length ? points : [event]) drawTo(...toCells(p));
    scheduleFlush();
  }

  function end(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    stroke = null;
    flush();
  }

  // The right button erases: no browser menu, and no JupyterLab menu (it honours this
  // attribute; stopping the event keeps other hosts' menus away too).
  canvas.setAttribute("data-jp-suppress-context-menu", "");
  const noMenu = (event) => {
    event.preventDefault();
    event.stopPropagation();
  };
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("contextmenu", noMenu);

  // -- Python changed the drawing ---------------------------------------------------------
  function fromPython() {
    cells = Uint8Array.from(model.get("mask"));
    dirty = false;
    paintAll();
  }
  function eraserCursor() {
    canvas.style.cursor = model.get("eraser") ? "cell" : "crosshair";
  }
  eraserCursor();
  model.on("change:mask", fromPython);
  model.on("change:eraser", eraserCursor);

  return () => {
    if (frame) cancelAnimationFrame(frame);
    model.off("change:mask", fromPython);
    model.off("change:eraser", eraserCursor);
  };
}

export default { render };
