/** Two small canvas drawings: the training curves and the confusion matrix. No chart library needed. */

export interface Curves {
  loss: number[];
  accuracy: number[];
  valLoss: number[];
  valAccuracy: number[];
}

const COLORS = { loss: '#d9480f', valLoss: '#f59f00', accuracy: '#1f6feb', valAccuracy: '#2f9e44' };

/** Loss (left axis) and accuracy (right axis, 0..1) per epoch. */
export function drawCurves(canvas: HTMLCanvasElement, curves: Curves, totalEpochs: number): void {
  const ctx = canvas.getContext('2d')!;
  const { width: W, height: H } = canvas;
  const pad = { l: 46, r: 46, t: 30, b: 30 };
  ctx.clearRect(0, 0, W, H);
  ctx.font = '12px system-ui, sans-serif';
  const epochs = Math.max(totalEpochs, curves.loss.length, 2);
  const maxLoss = Math.max(0.1, ...curves.loss, ...curves.valLoss) * 1.1;
  const x = (e: number) => pad.l + ((W - pad.l - pad.r) * e) / (epochs - 1);
  const yLoss = (v: number) => H - pad.b - ((H - pad.t - pad.b) * v) / maxLoss;
  const yAcc = (v: number) => H - pad.b - (H - pad.t - pad.b) * v;
  ctx.strokeStyle = '#e1e5ea';
  ctx.fillStyle = '#5b6677';
  for (let i = 0; i <= 4; i++) {
    const y = yAcc(i / 4);
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(W - pad.r, y);
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.fillText(((maxLoss * i) / 4).toFixed(2), pad.l - 4, y + 4);
    ctx.textAlign = 'left';
    ctx.fillText((i / 4).toFixed(2), W - pad.r + 4, y + 4);
  }
  ctx.textAlign = 'center';
  const step = Math.max(1, Math.ceil(epochs / 10));
  for (let e = 0; e < epochs; e += step) ctx.fillText(String(e + 1), x(e), H - pad.b + 14);
  ctx.fillText('epoch', W / 2, H - 2);
  const line = (values: number[], y: (v: number) => number, color: string, dashed = false) => {
    if (!values.length) return;
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.setLineDash(dashed ? [5, 4] : []);
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    ctx.setLineDash([]);
    values.forEach((v, i) => ctx.fillRect(x(i) - 2, y(v) - 2, 4, 4));
    ctx.lineWidth = 1;
  };
  line(curves.loss, yLoss, COLORS.loss);
  line(curves.valLoss, yLoss, COLORS.valLoss, true);
  line(curves.accuracy, yAcc, COLORS.accuracy);
  line(curves.valAccuracy, yAcc, COLORS.valAccuracy, true);
  const legend: [string, string][] = [
    ['loss', COLORS.loss],
    ['held-out loss', COLORS.valLoss],
    ['accuracy', COLORS.accuracy],
    ['held-out accuracy', COLORS.valAccuracy],
  ];
  let lx = pad.l + 8;
  ctx.textAlign = 'left';
  for (const [name, color] of legend) {
    ctx.fillStyle = color;
    ctx.fillRect(lx, 10, 12, 3);
    ctx.fillStyle = '#3b4656';
    ctx.fillText(name, lx + 16, 15);
    lx += ctx.measureText(name).width + 36;
  }
}

/** `matrix[actual][predicted]` as a heat map with counts, rows = actual class. */
export function drawConfusion(canvas: HTMLCanvasElement, classes: readonly string[], matrix: number[][]): void {
  const ctx = canvas.getContext('2d')!;
  const k = classes.length;
  const label = 80;
  const cell = Math.max(24, Math.min(70, Math.floor(240 / k)));
  canvas.width = label + cell * k + 10;
  canvas.height = label + cell * k + 10;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  for (let a = 0; a < k; a++) {
    const rowTotal = matrix[a]!.reduce((s, v) => s + v, 0) || 1;
    for (let p = 0; p < k; p++) {
      const v = matrix[a]![p]!;
      const share = v / rowTotal;
      const hue = a === p ? 215 : 5;
      ctx.fillStyle = v === 0 ? '#f4f6f9' : `hsl(${hue} 75% ${92 - 50 * share}%)`;
      ctx.fillRect(label + p * cell, label + a * cell, cell - 2, cell - 2);
      ctx.fillStyle = share > 0.6 ? '#fff' : '#1d2430';
      ctx.textAlign = 'center';
      ctx.fillText(String(v), label + p * cell + cell / 2 - 1, label + a * cell + cell / 2 - 1);
    }
  }
  ctx.fillStyle = '#3b4656';
  const clip = (s: string) => (s.length > 10 ? `${s.slice(0, 9)}…` : s);
  for (let i = 0; i < k; i++) {
    ctx.textAlign = 'right';
    ctx.fillText(clip(classes[i]!), label - 6, label + i * cell + cell / 2);
    ctx.save();
    ctx.translate(label + i * cell + cell / 2, label - 6);
    ctx.rotate(-Math.PI / 4);
    ctx.textAlign = 'left';
    ctx.fillText(clip(classes[i]!), 0, 0);
    ctx.restore();
  }
  ctx.textAlign = 'left';
  ctx.fillText('actual ↓  predicted →', 4, 12);
}
