import { act, fireEvent, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { classifyImage, fetchHealth } from './api';
import { ApiError } from './apiError';
import { App } from './App';
import { errorSentence } from './messages';
import { HEALTH, imageFile, LIMITS, makeLocalization, makeResult, sizedFile } from './test/fixtures';
import type { ClassifyResponse } from './types';
import { sizeMessage, typeMessage } from './validation';

const TYPE_MESSAGE = typeMessage(LIMITS);
const SIZE_MESSAGE = sizeMessage(LIMITS);

vi.mock('./api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./api')>()),
  classifyImage: vi.fn(),
  fetchHealth: vi.fn(),
}));

const classify = vi.mocked(classifyImage);

beforeEach(() => {
  classify.mockReset();
  vi.mocked(fetchHealth).mockResolvedValue(HEALTH);
});

function setup() {
  // the picker's accept attribute is the browser's business; the page must check on its own
  const user = userEvent.setup({ applyAccept: false });
  render(<App />);
  const input = screen.getByLabelText(/choose mri image/i) as HTMLInputElement;
  return { user, input };
}

/** setup() once the service has answered /api/health (its limits are known). */
async function setupOnline() {
  const parts = setup();
  await screen.findByText('Service online');
  return parts;
}

/** A classifyImage that the test resolves when it wants, after reporting upload progress. */
function pending() {
  let resolve!: (value: ClassifyResponse) => void;
  let reject!: (error: unknown) => void;
  let progress: ((fraction: number) => void) | undefined;
  classify.mockImplementationOnce((_file, options) => {
    progress = options?.onUploadProgress;
    return new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
  });
  return {
    resolve: (value: ClassifyResponse) => act(async () => resolve(value)),
    reject: (error: unknown) => act(async () => reject(error)),
    progress: (fraction: number) => act(() => progress?.(fraction)),
  };
}

describe('upload validation', () => {
  it('refuses a file type the API does not allow, with its message, without uploading', async () => {
    const { user, input } = await setupOnline();
    await user.upload(input, new File(['x'], 'notes.txt', { type: 'text/plain' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(errorSentence('INVALID_FILE_TYPE'));
    expect(alert).toHaveTextContent(TYPE_MESSAGE);
    expect(alert).toHaveTextContent('notes.txt');
    expect(classify).not.toHaveBeenCalled();
  });

  it('refuses a file over 16 MB, with the API message', async () => {
    const { user, input } = await setupOnline();
    await user.upload(input, sizedFile('huge.png', 16 * 1024 * 1024 + 1));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(SIZE_MESSAGE);
    expect(alert).toHaveTextContent(errorSentence('FILE_TOO_LARGE', LIMITS));
    expect(classify).not.toHaveBeenCalled();
  });

  it('the message can be dismissed', async () => {
    const { user, input } = await setupOnline();
    await user.upload(input, new File(['x'], 'notes.txt'));
    await user.click(await screen.findByRole('button', { name: /dismiss/i }));
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });
});

describe("the service's limits", () => {
  it('are read from /api/health, not copied: a service that takes 1 MB of PNG', async () => {
    vi.mocked(fetchHealth).mockResolvedValue({
      status: 'healthy',
      upload: { max_bytes: 1024 * 1024, extensions: ['png'], dicom_extensions: [] },
    });
    const { user, input } = await setupOnline();
    expect(screen.getByText(/PNG · up to 1 MB/)).toBeInTheDocument();
    expect(input).toHaveAttribute('accept', '.png,application/dicom');
    await user.upload(input, sizedFile('big.png', 2 * 1024 * 1024));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('File exceeds 1MB limit');
    expect(alert).toHaveTextContent('smaller than 1 MB');
    expect(classify).not.toHaveBeenCalled();
  });

  it('a service that states none gets every file and answers for itself', async () => {
    vi.mocked(fetchHealth).mockResolvedValue({ status: 'healthy' });
    const { user, input } = await setupOnline();
    const call = pending();
    await user.upload(input, new File(['x'], 'notes.txt', { type: 'text/plain' }));
    expect(classify).toHaveBeenCalled();
    await call.reject(new ApiError('INVALID_FILE_TYPE', 'File type not allowed. Allowed: png', 415));
    expect(screen.getByRole('alert')).toHaveTextContent(errorSentence('INVALID_FILE_TYPE'));
  });
});

describe('classifying', () => {
  it("draws a segmenting model's tumour outline over the scan, with its switch", async () => {
    const { user, input } = setup();
    classify.mockResolvedValueOnce({ ...makeResult(), localization: makeLocalization() });
    await user.upload(input, imageFile('glioma_2.png'));
    expect(await screen.findByRole('switch', { name: 'Outline' })).toBeChecked();
    expect(screen.getByAltText('Tumour outline by the model on glioma_2.png')).toBeVisible();
  });

  it('previews the image, shows progress, then the result card and the viewer', async () => {
    const { user, input } = setup();
    const call = pending();
    await user.upload(input, imageFile('glioma_1.png'));

    expect(screen.getByAltText('Preview of glioma_1.png')).toHaveAttribute('src', expect.stringMatching(/^blob:/));
    const bar = screen.getByRole('progressbar', { name: /classifying glioma_1.png/i });
    expect(bar).toHaveAttribute('aria-valuenow', '0');
    await call.progress(0.5);
    expect(bar).toHaveAttribute('aria-valuenow', '50');
    expect(screen.getByText('Uploading 50%')).toBeInTheDocument();
    await call.progress(1);
    expect(screen.getByText(/analysing with the model/i)).toBeInTheDocument();
    expect(screen.getByRole('main')).toHaveAttribute('aria-busy', 'true');

    await call.resolve(makeResult());
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
    expect(screen.getByRole('heading', { name: 'Glioma' })).toBeInTheDocument();
    expect(screen.getAllByRole('meter')).toHaveLength(4);
    expect(screen.getByRole('radio', { name: 'Overlay' })).toBeChecked();
    expect(screen.getByText('glioma_1.png: Glioma, 94.5% confidence.')).toBeInTheDocument(); // live region
    expect(classify.mock.calls[0][0].name).toBe('glioma_1.png');
  });

  it.each([
    'NO_FILE',
    'EMPTY_FILENAME',
    'INVALID_FILE_TYPE',
    'INVALID_IMAGE',
    'FILE_TOO_LARGE',
    'CLASSIFICATION_ERROR',
    'NOT_BRAIN_MRI',
    'NOT_FOUND',
    'METHOD_NOT_ALLOWED',
    'INTERNAL_ERROR',
    'NETWORK_ERROR',
  ])('an API answer of %s shows its sentence', async (code) => {
    const { user, input } = await setupOnline();
    const call = pending();
    await user.upload(input, imageFile('scan.png'));
    await call.reject(new ApiError(code, `server says ${code.toLowerCase()}`, 400));
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent(errorSentence(code, LIMITS));
    expect(alert).toHaveTextContent(`server says ${code.toLowerCase()}`);
    expect(screen.queryByRole('progressbar')).not.toBeInTheDocument();
  });

  it('keeps a history to flip back through, newest first', async () => {
    const { user, input } = setup();
    let call = pending();
    await user.upload(input, imageFile('first.png'));
    await call.resolve(makeResult());
    call = pending();
    await user.upload(input, imageFile('second.png'));
    await call.resolve(
      makeResult({
        class: 'Pituitary',
        class_id: 3,
        confidence: 88,
        probabilities: { Glioma: 4, Meningioma: 4, 'No Tumor': 4, Pituitary: 88 },
      }),
    );
    const history = screen.getByRole('list', { name: /this session/i });
    const thumbs = within(history).getAllByRole('button');
    expect(thumbs.map((b) => b.getAttribute('aria-label'))).toEqual([
      'Scan 2: second.png, Pituitary 88.0%',
      'Scan 1: first.png, Glioma 94.5%',
    ]);
    expect(thumbs[0]).toHaveAttribute('aria-current', 'true');
    expect(screen.getByRole('heading', { name: 'Pituitary' })).toBeInTheDocument();

    await user.click(thumbs[1]);
    expect(screen.getByRole('heading', { name: 'Glioma' })).toBeInTheDocument();
    expect(thumbs[1]).toHaveAttribute('aria-current', 'true');

    await user.keyboard('{ArrowLeft}');
    expect(screen.getByRole('heading', { name: 'Pituitary' })).toBeInTheDocument();
    expect(thumbs[0]).toHaveFocus();

    await user.click(screen.getByRole('button', { name: 'Clear' }));
    expect(screen.queryByRole('list', { name: /this session/i })).not.toBeInTheDocument();
    expect(screen.getByText('No scan loaded')).toBeInTheDocument();
  });

  it('takes a dropped file', async () => {
    setup();
    const call = pending();
    const file = imageFile('dropped.png');
    fireEvent.drop(screen.getByRole('main'), { dataTransfer: { files: [file], types: ['Files'] } });
    expect(classify).toHaveBeenCalledWith(file, expect.anything());
    await call.resolve(makeResult());
    expect(screen.getByRole('heading', { name: 'Glioma' })).toBeInTheDocument();
  });

  it('takes a pasted image and names it', async () => {
    setup();
    const call = pending();
    const pasted = new File([new Uint8Array(16)], '', { type: 'image/png' });
    const event = new Event('paste', { bubbles: true, cancelable: true });
    Object.assign(event, { clipboardData: { files: [pasted], items: [] } });
    act(() => {
      document.body.dispatchEvent(event);
    });
    expect(classify.mock.calls[0][0].name).toBe('pasted-image.png');
    expect(event.defaultPrevented).toBe(true);
    await call.resolve(makeResult());
  });

  it('says when the service cannot be reached', async () => {
    vi.mocked(fetchHealth).mockRejectedValueOnce(new ApiError('NETWORK_ERROR', 'down'));
    setup();
    expect(await screen.findByText('Service unreachable')).toBeInTheDocument();
  });

  it('carries the research-software notice', async () => {
    setup();
    expect(screen.getByRole('note')).toHaveTextContent(/research software, not a medical device/i);
    expect(await screen.findByText('Service online')).toBeInTheDocument();
  });
});
