import { useEffect, useRef } from "preact/hooks"
import uPlot from "uplot"
import "uplot/dist/uPlot.min.css"

/** A bar chart over categories (uPlot): `labels` on the x axis, one or more series of values. */
export const BarChart = (props: {
  title: string
  labels: ReadonlyArray<string>
  series: ReadonlyArray<{ label: string; values: ReadonlyArray<number>; color: string }>
  unit?: string
}) => {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current
    if (el === null) return
    const xs = props.labels.map((_, i) => i)
    const every = Math.max(1, Math.ceil(props.labels.length / 8))
    const bars = uPlot.paths.bars!({ size: [0.7 / props.series.length, 60], align: 0 })
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 220,
        scales: { x: { time: false, range: [-0.5, Math.max(0.5, props.labels.length - 0.5)] } },
        legend: { live: false },
        axes: [
          {
            // At most ~8 category names, slanted, so they never run into each other.
            values: (_u, ticks) => ticks.map((t) => (t % every === 0 ? props.labels[t] ?? "" : "")),
            splits: () => xs,
            rotate: -40,
            size: 56,
            gap: 4,
          },
          { label: props.unit ?? "" },
        ],
        series: [
          {},
          ...props.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            fill: `${s.color}99`,
            paths: bars,
            points: { show: false },
          })),
        ],
      },
      [xs, ...props.series.map((s) => [...s.values])],
      el,
    )
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height: 220 }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.destroy()
    }
  }, [JSON.stringify(props)])
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={props.title} />
    </figure>
  )
}
