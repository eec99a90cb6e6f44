import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../apiError';
import { makeLocalization, MASK, NO_OUTLINE } from '../test/fixtures';
import { SeriesPanel } from './SeriesPanel';
import type { SeriesResponse, SeriesSlice } from './types';

const PNG = 'iVBORw0KGgo=';

function slice(index: number, cls: string | null, tumour: number | null): SeriesSlice {
  return {
    index,
    position: -40 + 5 * index,
    refused: cls === null,
    class: cls,
    class_id: cls === null ? null : ['Glioma', 'Meningioma', 'No Tumor', 'Pituitary'].indexOf(cls),
    confidence: cls === null ? null : 80,
    probabilities: cls === null ? null : { Glioma: 80, Meningioma: 10, 'No Tumor': 5, Pituitary: 5 },
    tumour_probability: tumour,
    ood: { flagged: cls === null, score: null, reasons: cls === null ? ['the image is blank'] : [] },
  };
}

function answer(): SeriesResponse {
  const slices = [slice(0, null, null), slice(1, 'No Tumor', 20), slice(2, 'Glioma', 95), slice(3, 'No Tumor', 10)];
  return {
    success: true,
    series: {
      source: 'dicom', slice_count: 4, modality: 'MR', orientation: 'axial', ordered_by: 'position',
      rows: 256, columns: 256, slice_spacing_mm: 5, files_ignored: 1,
    },
    slices,
    summary: {
      class: 'Glioma', class_id: 0, confidence: 80,
      probabilities: { Glioma: 80, Meningioma: 10, 'No Tumor': 5, Pituitary: 5 },
      tumour_probability: 95, slices_answered: 3, slices_refused: 1,
      class_counts: { Glioma: 1, Meningioma: 0, 'No Tumor': 2, Pituitary: 0 }, key_slice: 2,
      rule: 'tumour when any answered slice is a tumour',
    },
    key_slice: { ...slices[2], visualization: { heatmap_overlay: PNG, original_image: PNG, heatmap_only: PNG } },
    processing_time_ms: 300,
    timestamp: '2026-01-01T00:00:00.000Z',
  };
}

function choose(files: File[]) {
  const input = screen.getByLabelText('Choose series files');
  fireEvent.change(input, { target: { files } });
}

describe('SeriesPanel', () => {
  it('sends every chosen file and shows the series, the strip and the key slice', async () => {
    const classify = vi.fn().mockResolvedValue(answer());
    render(<SeriesPanel classify={classify} />);
    const files = [new File(['a'], 'IM1'), new File(['b'], 'IM2')];
    choose(files);
    expect(await screen.findByRole('heading', { name: /Series: Glioma/ })).toBeInTheDocument();
    expect(classify.mock.calls[0][0]).toEqual(files);
    expect(screen.getByText(/3 answered, 1 refused/)).toBeInTheDocument();
    expect(screen.getByText(/1 files ignored/)).toBeInTheDocument();
    const buttons = screen.getAllByRole('button', { name: /^Slice \d/ });
    expect(buttons).toHaveLength(4);
    expect(buttons[0]).toHaveClass('slice--refused');
    expect(buttons[0]).toHaveAccessibleName('Slice 0 at -40 mm: refused, not a brain MRI');
    expect(buttons[2]).toHaveClass('slice--glioma', 'slice--key');
    expect(buttons[3]).toHaveClass('slice--no-tumor');
    expect(screen.getByAltText('Key slice 2 with the Grad-CAM heatmap')).toHaveAttribute(
      'src', `data:image/png;base64,${PNG}`);
    fireEvent.click(buttons[0]);
    expect(buttons[0]).toHaveAttribute('aria-pressed', 'true');
    expect(screen.getByText(/the image is blank/)).toBeInTheDocument();
  });

  it("shows the API's own sentence for a series it refuses", async () => {
    const classify = vi.fn().mockRejectedValue(
      new ApiError('INVALID_SERIES', 'The files belong to 2 different series; send one series per request', 400));
    render(<SeriesPanel classify={classify} />);
    choose([new File(['a'], 'a.dcm')]);
    await waitFor(() => expect(screen.getByRole('alert')).toHaveTextContent('2 different series'));
    expect(screen.queryByRole('heading', { name: /Series:/ })).not.toBeInTheDocument();
  });

  it('takes files dropped on it, and keeps them from the page', async () => {
    const classify = vi.fn().mockResolvedValue(answer());
    const pageDrop = vi.fn((event: Event) => event.defaultPrevented);
    window.addEventListener('drop', pageDrop);
    render(<SeriesPanel classify={classify} />);
    const panel = screen.getByRole('region', { name: 'Classify a whole series' });
    const file = new File(['zip'], 'series.zip');
    fireEvent.drop(panel, { dataTransfer: { files: [file] } });
    await screen.findByRole('heading', { name: /Series: Glioma/ });
    expect(classify.mock.calls[0][0]).toEqual([file]);
    // the page's own drop handler sees the drop already taken (useFileDrop skips it)
    expect(pageDrop).toHaveReturnedWith(true);
    window.removeEventListener('drop', pageDrop);
  });

  it('sends the files of a dropped folder', async () => {
    const classify = vi.fn().mockResolvedValue(answer());
    render(<SeriesPanel classify={classify} />);
    const panel = screen.getByRole('region', { name: 'Classify a whole series' });
    const slices = [new File(['DICM'], 'IM1'), new File(['DICM'], 'IM2')];
    const folder = {
      name: 'SE0001', isFile: false, isDirectory: true,
      createReader: () => {
        let given = false;
        return {
          readEntries: (resolve: (entries: unknown[]) => void) => {
            const batch = given ? [] : slices.map((file) => ({
              name: file.name, isFile: true, isDirectory: false,
              file: (done: (f: File) => void) => done(file),
            }));
            given = true;
            setTimeout(() => resolve(batch), 0); // asynchronous, as in a browser
          },
        };
      },
    };
    fireEvent.drop(panel, {
      dataTransfer: { files: [new File([], 'SE0001')], items: [{ kind: 'file', webkitGetAsEntry: () => folder }] },
    });
    await screen.findByRole('heading', { name: /Series: Glioma/ });
    expect(classify.mock.calls[0][0]).toEqual(slices);
  });
});

describe('SeriesPanel, the key slice of a model that outlines the tumour', () => {
  it('draws the outline on both pictures of the key slice from the start, with a switch', async () => {
    const outlined = answer();
    outlined.key_slice.localization = makeLocalization({ area_mm2: 12.5, area_px: 16 });
    render(<SeriesPanel classify={vi.fn().mockResolvedValue(outlined)} />);
    choose([new File(['a'], 'IM1')]);
    const toggle = await screen.findByRole('switch', { name: 'Outline' });
    expect(toggle).toBeChecked();
    const layers = screen.getAllByAltText(/^Tumour outline by the model on key slice 2/);
    expect(layers).toHaveLength(2);
    for (const layer of layers) {
      expect(layer).toBeVisible();
      expect(layer).toHaveAttribute('src', `data:image/png;base64,${MASK}`);
    }
    expect(layers[0].closest('.series__stack')).toContainElement(
      screen.getByAltText('Key slice 2 with the Grad-CAM heatmap'));
    expect(screen.getByText(/Tumour outline by the model:/)).toHaveTextContent('12.5 mm² (16 px)');
    fireEvent.click(toggle);
    for (const layer of layers) expect(layer).not.toBeVisible();
  });

  it('says so when the key slice has an empty outline', async () => {
    const empty = answer();
    empty.key_slice.localization = NO_OUTLINE;
    render(<SeriesPanel classify={vi.fn().mockResolvedValue(empty)} />);
    choose([new File(['a'], 'IM1')]);
    expect(await screen.findByText('The model outlined no tumour on the key slice.')).toBeInTheDocument();
    expect(screen.queryByRole('switch')).not.toBeInTheDocument();
  });
});
