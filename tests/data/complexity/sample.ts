interface Shape { area(): number; name?: string }
export class Circle implements Shape {
  constructor(private r: number, public name?: string) {
    if (r < 0 || Number.isNaN(r)) { throw new Error("bad radius"); }
  }
  area(): number { return this.r > 0 ? Math.PI * this.r ** 2 : 0; }
  scaled(k?: number): Circle { return new Circle(this.r * (k ?? 1)); }
}
export function total(shapes: Shape[], min = 0): number {
  let sum = 0;
  for (const s of shapes) {
    if (s.area() < min && s.name) { continue; }
    sum += s.area();
  }
  const big = shapes.filter((s) => s.area() > 10 && !!s.name);
  switch (big.length) {
    case 0: return sum;
    case 1: return sum + 1;
    default: return sum * 2;
  }
}
export async function load(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url);
    while (!res.ok) { return undefined; }
    return res.text();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const pick = <T,>(xs: T[], f: (x: T) => boolean): T | undefined => xs.find(x => f(x) || false);
