import type { FileEntry, SortField, SortOrder } from '@dfs/shared';
import { DownloadOutline, EllipsisHorizontal } from '@vicons/ionicons5';
import {
  type DataTableBaseColumn,
  type DataTableColumns,
  type DataTableSortState,
  NIcon,
  NInput,
} from 'naive-ui';
import { type HTMLAttributes, h, type Ref } from 'vue';
import { RouterLink } from 'vue-router';
import { api } from '../api/index.ts';
import { DECORATIVE, fileIcon as iconFor } from './file-icons.ts';
import { formatBytes, formatDate } from './format.ts';
import type { useInlineRename } from './inline-rename.ts';
import { unseenTitle } from './table.ts';

const SORT_KEYS = {
  name: 'name',
  size: 'size',
  createdAt: 'createdAt',
  updatedAt: 'updatedAt',
  mtime: 'mtime',
} as const;

/**
 * Sorting done by the server. Naive's own cycle (descend → ascend → off) would drop back to an
 * unsorted list, which a server-sorted table doesn't have: a click on the sorted column flips it;
 * another column starts A→Z for names and largest/newest first for sizes and dates.
 */
export function useServerSort(sort: Ref<SortField>, order: Ref<SortOrder>) {
  function sortOrderOf(key: string): 'ascend' | 'descend' | false {
    return sort.value === key ? (order.value === 'asc' ? 'ascend' : 'descend') : false;
  }
  function onSorter(s: DataTableSortState | DataTableSortState[] | null): void {
    const one = Array.isArray(s) ? s[0] : s;
    const key = one?.columnKey as keyof typeof SORT_KEYS | undefined;
    if (!key || !(key in SORT_KEYS)) return;
    if (sort.value === key) order.value = order.value === 'asc' ? 'desc' : 'asc';
    else {
      sort.value = SORT_KEYS[key];
      order.value = key === 'name' ? 'asc' : 'desc';
    }
  }
  return { sortOrderOf, onSorter };
}

/**
 * Wide enough for the widest date either language formats ("Sep 28, 2026, 12:59 PM"), which
 * must not wrap: a table of two-line dates is twice as tall and reads badly.
 */
const DATE_WIDTH = 190;

/** Which columns fit: a phone keeps the name (with its size under it) and the row actions. */
export type Density = 'phone' | 'narrow' | 'wide';

export interface FileColumnsContext {
  t: (key: string, ...args: never[]) => string;
  density: Density;
  searching: boolean;
  sortOrderOf: (key: string) => 'ascend' | 'descend' | false;
  rename: ReturnType<typeof useInlineRename>;
  openMenu: (file: FileEntry, ev: MouseEvent) => void;
  /** The check-box column (see selection-column.ts). */
  select: DataTableBaseColumn<FileEntry>;
}

/** The file table's columns; cells are plain elements where possible (see the actions column). */
export function fileColumns(ctx: FileColumnsContext): DataTableColumns<FileEntry> {
  const { t, density, searching, sortOrderOf } = ctx;
  const phone = density === 'phone';
  return [
    ctx.select,
    {
      title: t('files.name'),
      key: 'name',
      sorter: true,
      sortOrder: sortOrderOf('name'),
      // The name takes what is left, never less than this: it is the one column that must show.
      minWidth: 160,
      render: (f) => nameCell(ctx, f, phone),
    },
    ...(searching && !phone
      ? [
          {
            title: t('files.location'),
            key: 'location',
            width: 140,
            // A link (it navigates), in the theme's link colour: the primary blue on the dark
            // theme's background is under 4.5:1.
            render: (f: FileEntry) =>
              h(
                RouterLink,
                {
                  to: f.parentId ? { name: 'files', params: { folderId: f.parentId } } : { name: 'files' },
                  class: 'loclink',
                  onClick: (e: Event) => e.stopPropagation(),
                },
                () => t('files.openFolder'),
              ),
          },
        ]
      : []),
    ...(phone
      ? []
      : [
          {
            title: t('files.size'),
            key: 'size',
            width: 100,
            sorter: true,
            sortOrder: sortOrderOf('size'),
            render: (f: FileEntry) => (f.kind === 'folder' ? '—' : formatBytes(f.size)),
          },
        ]),
    ...(density === 'wide'
      ? [
          {
            title: t('files.created'),
            key: 'createdAt',
            width: DATE_WIDTH,
            className: 'datecell',
            sorter: true,
            sortOrder: sortOrderOf('createdAt'),
            render: (f: FileEntry) => formatDate(f.createdAt),
          },
        ]
      : []),
    ...(phone
      ? []
      : [
          {
            title: t('files.modified'),
            // The source file's time (as the uploader's disk had it), not when it reached the server.
            key: 'mtime',
            width: DATE_WIDTH,
            className: 'datecell',
            sorter: true,
            sortOrder: sortOrderOf('mtime'),
            render: (f: FileEntry) => formatDate(f.mtime),
          },
        ]),
    {
      title: unseenTitle(t('files.actions')),
      key: 'actions',
      width: phone ? 44 : 76,
      render: (f) => actionsCell(ctx, f, phone),
    },
  ];
}

function fileIcon(f: FileEntry) {
  return h(NIcon, { ...DECORATIVE, size: 18, class: f.kind === 'folder' ? 'ficon folder' : 'ficon' }, () =>
    h(iconFor(f)),
  );
}

// Plain CSS ellipsis + title: a tooltip component per cell makes scrolling 10,000 rows stutter.
function nameCell(ctx: FileColumnsContext, f: FileEntry, phone: boolean) {
  const { rename, t } = ctx;
  if (rename.editingId.value === f.id) {
    return h('div', { class: 'namecell', onClick: (e: Event) => e.stopPropagation() }, [
      fileIcon(f),
      h(NInput, {
        ref: rename.input,
        size: 'small',
        placeholder: t('files.name'),
        value: rename.editName.value,
        'onUpdate:value': (v: string) => {
          rename.editName.value = v;
        },
        onKeydown: (e: KeyboardEvent) => {
          if (e.key === 'Enter') void rename.commit();
          else if (e.key === 'Escape') rename.cancel();
          e.stopPropagation();
        },
        onBlur: () => void rename.commit(),
        inputProps: { 'aria-label': t('files.rename') } as HTMLAttributes,
        'data-testid': 'rename-input',
      }),
    ]);
  }
  const label =
    f.kind === 'folder'
      ? h(
          RouterLink,
          {
            to: { name: 'files', params: { folderId: f.id } },
            class: 'flink',
            title: f.name,
            onClick: (e: Event) => e.stopPropagation(),
          },
          () => f.name,
        )
      : h('span', { class: 'fname', title: f.name }, f.name);
  const badge = sharedBadge(ctx, f);
  if (!phone) return h('div', { class: 'namecell' }, [fileIcon(f), label, badge]);
  // On a phone the size and date ride under the name instead of taking columns.
  const sub = f.kind === 'folder' ? formatDate(f.mtime) : `${formatBytes(f.size)} · ${formatDate(f.mtime)}`;
  return h('div', { class: 'namecell' }, [
    fileIcon(f),
    h('div', { class: 'namestack' }, [label, h('span', { class: 'fsub' }, sub)]),
    badge,
  ]);
}

/**
 * What is shared with the user, at the top of their root: whose it is and their role there (a
 * native element, as the rest of the row, and styled inline so any list can show it).
 */
function sharedBadge(ctx: FileColumnsContext, f: FileEntry) {
  if (!f.shared || f.parentId !== null) return null;
  // The context's `t` takes no arguments by type; the badge's messages have placeholders.
  const t = ctx.t as unknown as (key: string, values?: Record<string, string>) => string;
  const role = f.shared.role === 'editor' ? t('people.editor') : t('people.viewer');
  const owner = f.shared.owner.username;
  return h(
    'span',
    {
      class: 'sharedbadge',
      title: t('sharedWithMe.badgeTitle', { owner, role }),
      'data-testid': 'shared-badge',
      style:
        'flex:none;margin-left:8px;padding:0 6px;border:1px solid var(--dfs-border);border-radius:10px;' +
        'font-size:12px;line-height:18px;color:var(--dfs-muted);white-space:nowrap',
    },
    t('sharedWithMe.badge', { owner, role }),
  );
}

// Native elements and one shared dropdown: a component tree per row is what makes a virtual list
// of 10,000 rows slow to scroll.
function actionsCell(ctx: FileColumnsContext, f: FileEntry, phone: boolean) {
  const { t } = ctx;
  return h('div', { class: 'rowactions', onClick: (e: Event) => e.stopPropagation() }, [
    f.kind === 'file' && !phone
      ? h(
          'a',
          {
            href: api.contentUrl(f.id),
            download: f.name,
            class: 'rowbtn',
            title: t('files.download'),
            'aria-label': t('files.download'),
            'data-testid': 'row-download',
          },
          [h(NIcon, { ...DECORATIVE, size: 16 }, () => h(DownloadOutline))],
        )
      : null,
    h(
      'button',
      {
        type: 'button',
        class: 'rowbtn',
        title: t('files.actions'),
        'aria-label': t('files.actions'),
        'aria-haspopup': 'menu',
        'data-testid': 'row-menu',
        onClick: (e: MouseEvent) => ctx.openMenu(f, e),
      },
      [h(NIcon, { ...DECORATIVE, size: 16 }, () => h(EllipsisHorizontal))],
    ),
  ]);
}
