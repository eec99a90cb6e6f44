import { fireEvent, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { saveDataUrl } from '../download';
import { makeResult } from '../test/fixtures';
import { GradCamViewer } from './GradCamViewer';

function renderViewer() {
  const { visualization } = makeResult();
  return render(<GradCamViewer visualization={visualization} fileName="scan.png" predictedClass="Glioma" />);
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
