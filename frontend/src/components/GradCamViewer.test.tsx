import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { saveDataUrl } from '../download';
import { makeLocalization, makeResult, MASK, NO_OUTLINE } from '../test/fixtures';
import type { Localization } from '../types';
import { GradCamViewer } from './GradCamViewer';

function renderViewer(localization?: Localization) {
  const { visualization } = makeResult();
  return render(
    <GradCamViewer
      visualization={visualization}
      fileName="scan.png"
      predictedClass="Glioma"
      localization={localization}
    />,
  );
}

vi.mock('../download', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../download')>()),
  saveDataUrl: vi.fn(),
}));

const original = () => screen.getByAltText('Original scan scan.png');
const heatmap = () => screen.getByAltText('Grad-CAM heatmap for Glioma');

describe('GradCamViewer', () => {
  it('starts on the overlay: the heatmap over the original at 40%', () => {
    renderViewer();
    expect(screen.getByRole('radio', { name: 'Overlay' })).toBeChecked();
    expect(original()).toBeVisible();
    expect(heatmap()).toBeVisible();
    expect(heatmap()).toHaveStyle({ opacity: '0.4' });
    expect(original().getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    expect(screen.getByRole('slider', { name: /heatmap opacity/i })).toHaveValue('40');
  });

  it('switches between heatmap, original and overlay', async () => {
    const user = userEvent.setup();
    renderViewer();
    await user.click(screen.getByRole('radio', { name: 'Heatmap' }));
    expect(heatmap()).toBeVisible();
    expect(heatmap()).toHaveStyle({ opacity: '1' });
    expect(original()).not.toBeVisible();
    expect(screen.getByRole('slider', { name: /heatmap opacity/i })).toBeDisabled();

    await user.click(screen.getByRole('radio', { name: 'Original' }));
    expect(original()).toBeVisible();
    expect(heatmap()).not.toBeVisible();

    await user.click(screen.getByRole('radio', { name: 'Overlay' }));
    expect(original()).toBeVisible();
    expect(heatmap()).toBeVisible();
    expect(screen.getByRole('slider', { name: /heatmap opacity/i })).toBeEnabled();
  });

  it('switches with the arrow keys (a radio group)', async () => {
    const user = userEvent.setup();
    renderViewer();
    screen.getByRole('radio', { name: 'Overlay' }).focus();
    await user.keyboard('{ArrowRight}');
    expect(screen.getByRole('radio', { name: 'Heatmap' })).toBeChecked();
    expect(screen.getByRole('group', { name: /Grad-CAM heatmap for Glioma of scan.png/ })).toBeInTheDocument();
  });

  it('the slider sets the heatmap opacity', () => {
    renderViewer();
    const slider = screen.getByRole('slider', { name: /heatmap opacity/i });
    fireEvent.change(slider, { target: { value: '75' } });
    expect(heatmap()).toHaveStyle({ opacity: '0.75' });
    expect(slider).toHaveAttribute('aria-valuetext', '75%');
    expect(screen.getByText('75%', { selector: 'output' })).toBeInTheDocument();
  });

  it('explains the colours', () => {
    renderViewer();
    expect(screen.getByText(/where the model looked most/)).toHaveTextContent(
      'Red = where the model looked most, blue = least.',
    );
  });

  it('downloads the overlay as a PNG named after the scan', async () => {
    const save = vi.mocked(saveDataUrl);
    const user = userEvent.setup();
    renderViewer();
    await user.click(screen.getByRole('button', { name: /download overlay/i }));
    await vi.waitFor(() => expect(save).toHaveBeenCalled());
    const [url, name] = save.mock.calls[0];
    expect(url).toMatch(/^data:image\/png;base64,/);
    expect(name).toBe('scan-gradcam-overlay.png');
  });
});

describe('GradCamViewer, with the tumour outline of a segmenting model', () => {
  const outline = () => screen.getByAltText('Tumour outline by the model on scan.png');
  const toggle = () => screen.getByRole('switch', { name: 'Outline' });

  it('draws the outline over the scan from the start, with its area in mm² and px', () => {
    const { container } = renderViewer(makeLocalization());
    expect(toggle()).toBeChecked();
    expect(outline()).toBeVisible();
    expect(outline()).toHaveAttribute('src', `data:image/png;base64,${MASK}`);
    // stacked with the scan and the heatmap, drawn through its own SVG filter
    expect(outline().closest('.viewer__stack')).toBe(original().closest('.viewer__stack'));
    const filter = outline().style.filter.match(/^url\("?#([\w-]+)"?\)$/)?.[1];
    expect(filter).toBeTruthy();
    expect(container.querySelector(`filter#${filter} feMorphology`)).not.toBeNull();
    expect(screen.getByText(/Tumour outline by the model:/)).toHaveTextContent(
      'Tumour outline by the model: 961.5 mm² (1,187 px)');
    expect(screen.getByRole('group', { name: /with the model's tumour outline$/ })).toBeInTheDocument();
  });

  it('the switch hides and shows it, in every view', async () => {
    const user = userEvent.setup();
    renderViewer(makeLocalization());
    await user.click(toggle());
    expect(toggle()).not.toBeChecked();
    expect(outline()).not.toBeVisible();
    expect(heatmap()).toBeVisible(); // the heatmap is not the outline's to hide
    expect(screen.queryByRole('group', { name: /tumour outline/ })).not.toBeInTheDocument();
    await user.click(screen.getByRole('radio', { name: 'Original' }));
    expect(outline()).not.toBeVisible();
    await user.click(toggle());
    expect(outline()).toBeVisible();
    expect(original()).toBeVisible();
  });

  it('gives the area in pixels alone when the pixel spacing is not known', () => {
    renderViewer(makeLocalization({ area_mm2: null, area_px: 52 }));
    expect(screen.getByText(/Tumour outline by the model:/)).toHaveTextContent(
      'Tumour outline by the model: 52 px');
  });

  it('says so when the model outlined nothing, with no switch', () => {
    renderViewer(NO_OUTLINE);
    expect(screen.queryByRole('switch')).not.toBeInTheDocument();
    expect(screen.queryByAltText(/Tumour outline/)).not.toBeInTheDocument();
    expect(screen.getByText('The model outlined no tumour on this slice.')).toBeInTheDocument();
  });

  it('shows neither for a model without an outline', () => {
    renderViewer();
    expect(screen.queryByRole('switch')).not.toBeInTheDocument();
    expect(screen.queryByText(/outline/i)).not.toBeInTheDocument();
  });
});
