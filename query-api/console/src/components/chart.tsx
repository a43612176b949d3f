// uPlot charts as components: drawn into a box after it is laid out
// (its width is the box's), redrawn when the data change, destroyed on
// unmount.
import type { JSX } from "preact";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartProps {
  /** Options without width (taken from the box). */
  options: Omit<uPlot.Options, "width">;
  data: uPlot.AlignedData;
  /** Subtracted from the box's width (its padding). */
  inset?: number;
  minWidth?: number;
  class?: string;
  /** Attributes for tests (`data-spark`). */
  attrs?: Record<string, string>;
}

export function Chart({ options, data, inset = 0, minWidth = 80, class: cls, attrs }: ChartProps): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const parent = el.parentElement ?? el;
    const width = Math.max(minWidth, parent.clientWidth - inset);
    const plot = new uPlot({ ...options, width } as uPlot.Options, data, el);
    return () => plot.destroy();
    // Options are literals of the caller: redraw on new data only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data]);
  return <div ref={box} class={cls} {...(attrs ?? {})} />;
}
