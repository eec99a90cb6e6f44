import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { classifyImage, fetchHealth } from './api';
import { ApiError } from './apiError';
import { authorize, getApiKey, setApiKey, withApiKey } from './apiKey';
import { App } from './App';
import { HEALTH, imageFile, makeResult } from './test/fixtures';

vi.mock('./api', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./api')>()),
  classifyImage: vi.fn(),
  fetchHealth: vi.fn(),
}));

const classify = vi.mocked(classifyImage);
const unauthorized = () =>
  new ApiError('UNAUTHORIZED', 'An API key is required: send the header Authorization: Bearer KEY', 401);

beforeEach(() => {
  setApiKey(null);
  classify.mockReset();
  vi.mocked(fetchHealth).mockResolvedValue(HEALTH);
});

afterEach(() => setApiKey(null));

async function upload() {
  const user = userEvent.setup({ applyAccept: false });
  render(<App />);
  await screen.findByText('Service online');
  await user.upload(screen.getByLabelText(/choose mri image/i), imageFile('scan.png'));
  return user;
}

describe('API key prompt', () => {
  it('asks for a key on 401, sends the file again with it, keeps it in memory only', async () => {
    const sentWith: (string | null)[] = [];
    classify.mockImplementation(async () => {
      sentWith.push(getApiKey());
      if (getApiKey() !== 'bt_right') throw unauthorized();
      return makeResult();
    });
    const user = await upload();

    const dialog = await screen.findByRole('dialog', { name: 'API key needed' });
    expect(dialog).toHaveTextContent('An API key is required');
    const field = screen.getByLabelText('API key');
    expect(field).toHaveAttribute('type', 'password');
    await user.type(field, 'bt_right');
    await user.click(screen.getByRole('button', { name: 'Use key' }));

    expect(await screen.findByRole('heading', { name: 'Glioma' })).toBeInTheDocument();
    expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    expect(sentWith).toEqual([null, 'bt_right']);
    expect(JSON.stringify({ ...localStorage })).not.toContain('bt_right');
    expect(JSON.stringify({ ...sessionStorage })).not.toContain('bt_right');
    expect(document.cookie).not.toContain('bt_right');
  });

  it('asks again after a wrong key, and a revoked key says so', async () => {
    classify
      .mockRejectedValueOnce(unauthorized())
      .mockRejectedValueOnce(new ApiError('FORBIDDEN', 'This API key has been revoked', 403))
      .mockResolvedValueOnce(makeResult());
    const user = await upload();
    await user.type(await screen.findByLabelText('API key'), 'bt_old');
    await user.click(screen.getByRole('button', { name: 'Use key' }));
    expect(await screen.findByRole('dialog', { name: 'This API key was revoked' })).toBeInTheDocument();
    await user.type(screen.getByLabelText('API key'), 'bt_new');
    await user.click(screen.getByRole('button', { name: 'Use key' }));
    expect(await screen.findByRole('heading', { name: 'Glioma' })).toBeInTheDocument();
    expect(classify).toHaveBeenCalledTimes(3);
  });

  it('cancelling leaves the 401 as the error shown', async () => {
    classify.mockRejectedValue(unauthorized());
    const user = await upload();
    await user.click(await screen.findByRole('button', { name: 'Cancel' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent(/needs an API key/i);
    expect(alert).toHaveTextContent('UNAUTHORIZED');
    expect(classify).toHaveBeenCalledTimes(1);
  });

  it('adds the bearer header only once there is a key', () => {
    const xhr = { setRequestHeader: vi.fn() } as unknown as XMLHttpRequest;
    authorize(xhr);
    expect(xhr.setRequestHeader).not.toHaveBeenCalled();
    setApiKey('  bt_k  ');
    authorize(xhr);
    expect(xhr.setRequestHeader).toHaveBeenCalledWith('Authorization', 'Bearer bt_k');
  });

  it('other errors pass through without a question', async () => {
    const failure = new ApiError('NOT_BRAIN_MRI', 'not a scan', 422);
    await expect(withApiKey(() => Promise.reject(failure))).rejects.toBe(failure);
  });
});
