import { BarChart, type BarSeriesOption, LineChart, type LineSeriesOption } from 'echarts/charts';
import {
  GridComponent,
  type GridComponentOption,
  LegendComponent,
  type LegendComponentOption,
  TooltipComponent,
  type TooltipComponentOption,
} from 'echarts/components';
import { type ComposeOption, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

/**
 * Only the pieces the dashboard draws with, registered once: importing `echarts` whole would
 * triple the dashboard's chunk. This module is reached only from the lazily loaded dashboard
 * page, so no other page downloads ECharts.
 */
use([CanvasRenderer, LineChart, BarChart, GridComponent, TooltipComponent, LegendComponent]);

export type ChartOption = ComposeOption<
  LineSeriesOption | BarSeriesOption | GridComponentOption | TooltipComponentOption | LegendComponentOption
>;
