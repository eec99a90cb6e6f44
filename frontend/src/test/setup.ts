import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach, vi } from 'vitest';

// jsdom has neither object URLs nor a canvas
let objectUrls = 0;
URL.createObjectURL = vi.fn(() => `blob:test/${++objectUrls}`);
URL.revokeObjectURL = vi.fn();
HTMLCanvasElement.prototype.getContext = vi.fn(() => null) as never;

afterEach(() => {
  cleanup();
});
