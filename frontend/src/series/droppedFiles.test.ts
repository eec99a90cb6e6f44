import { describe, expect, it } from 'vitest';
import { dropEntries, filesOf } from './droppedFiles';

// jsdom has no FileSystemEntry: these stand in for what Chromium hands a drop handler,
// with readEntries giving a folder in batches as Chromium does (100 at a time there).
function fileEntry(file: File): FileSystemFileEntry {
  return {
    name: file.name, isFile: true, isDirectory: false,
    file: (resolve: (f: File) => void) => resolve(file),
  } as unknown as FileSystemFileEntry;
}

function folderEntry(name: string, entries: FileSystemEntry[], batch = 2): FileSystemDirectoryEntry {
  return {
    name, isFile: false, isDirectory: true,
    createReader: () => {
      let at = 0;
      return {
        readEntries: (resolve: (e: FileSystemEntry[]) => void) => {
          const part = entries.slice(at, at + batch);
          at += batch;
          setTimeout(() => resolve(part), 0);
        },
      };
    },
  } as unknown as FileSystemDirectoryEntry;
}

function transfer(entries: (FileSystemEntry | null)[], files: File[]): DataTransfer {
  return {
    items: entries.map((entry) => ({ kind: 'file', webkitGetAsEntry: () => entry })),
    files,
  } as unknown as DataTransfer;
}

const dicom = (name: string) => new File(['DICM'], name);

describe('files of a drop', () => {
  it('walks a dropped folder and its sub-folders, in name order, skipping dot files and empty files', async () => {
    const [a, b, c, d] = [dicom('IM2'), dicom('IM10'), dicom('IM1'), dicom('IM3')];
    const series = folderEntry('SE0001', [
      fileEntry(b), fileEntry(new File([], 'EMPTY')), fileEntry(a),
      folderEntry('sub', [fileEntry(d)]), fileEntry(c), fileEntry(dicom('.DS_Store')),
    ]);
    const dropped = dropEntries(transfer([series], [new File([], 'SE0001')]));
    expect(await filesOf(dropped)).toEqual([c, a, b, d]);
  });

  it('keeps plain dropped files as they are when no folder was dropped', async () => {
    const [a, b] = [dicom('IM1'), new File(['zip'], 'series.zip')];
    expect(await filesOf(dropEntries(transfer([fileEntry(a), fileEntry(b)], [a, b])))).toEqual([a, b]);
    // a browser that gives no entries at all: the plain files
    expect(await filesOf(dropEntries(transfer([null, null], [a, b])))).toEqual([a, b]);
  });

  it('mixes a folder with files dropped beside it', async () => {
    const [a, b, c] = [dicom('IM1'), dicom('IM2'), dicom('loose')];
    const dropped = dropEntries(transfer([folderEntry('S', [fileEntry(a), fileEntry(b)]), fileEntry(c)], []));
    expect(await filesOf(dropped)).toEqual([a, b, c]);
  });
});
