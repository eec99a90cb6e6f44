/**
 * The files of a drop on the series panel, with dropped folders walked: a DICOM series
 * usually leaves a PACS viewer or a CD as a folder of extension-less files, and a drop
 * hands over only the folder itself in `dataTransfer.files` (an empty File).
 *
 * The entries must be taken while the drop event runs (the browser empties the
 * DataTransfer after it): call `dropEntries` in the handler, then `filesOf` at leisure.
 */

/** What a drop holds: its entries when the browser gives them, else its plain files. */
export interface Dropped {
  entries: FileSystemEntry[];
  files: File[];
}

/** Folder levels walked at most: a series folder sits a few levels below a study's. */
const MAX_DEPTH = 8;

export function dropEntries(data: DataTransfer): Dropped {
  const entries = Array.from(data.items ?? [])
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry?.() ?? null)
    .filter((entry): entry is FileSystemEntry => entry !== null);
  return { entries, files: Array.from(data.files ?? []) };
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

function children(entry: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = entry.createReader();
  const all: FileSystemEntry[] = [];
  // readEntries gives a folder's entries in batches (100 at a time in Chromium) until []
  return new Promise((resolve, reject) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, depth: number, out: File[]): Promise<void> {
  if (entry.name.startsWith('.')) return; // .DS_Store, ._IM0001: the OS's, not the scanner's
  if (entry.isFile) out.push(await fileOf(entry as FileSystemFileEntry));
  else if (entry.isDirectory && depth < MAX_DEPTH) {
    const found = await children(entry as FileSystemDirectoryEntry);
    found.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    for (const child of found) await walk(child, depth + 1, out);
  }
}

/** Every non-empty file of the drop, folders walked in name order. */
export async function filesOf(dropped: Dropped): Promise<File[]> {
  if (!dropped.entries.some((entry) => entry.isDirectory)) {
    return dropped.files.filter((file) => file.size > 0);
  }
  const out: File[] = [];
  for (const entry of dropped.entries) await walk(entry, 0, out);
  return out.filter((file) => file.size > 0);
}
