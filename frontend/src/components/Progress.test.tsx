import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { Progress } from './Progress';

describe('Progress', () => {
  it('previews an image the browser can draw', () => {
    render(<Progress previewUrl="blob:scan" fileName="scan.jpg" uploaded={0.5} />);
    expect(screen.getByRole('img', { name: 'Preview of scan.jpg' })).toHaveAttribute('src', 'blob:scan');
    expect(screen.getByRole('progressbar', { name: 'Classifying scan.jpg' })).toHaveAttribute(
      'aria-valuenow',
      '50',
    );
  });

  it('says a DICOM picture comes with the answer instead of a broken preview', () => {
    render(<Progress previewUrl="blob:series" fileName="SERIES.DCM" uploaded={1} />);
    expect(screen.queryByRole('img')).not.toBeInTheDocument();
    expect(screen.getByText(/DICOM file: the picture appears once the service has decoded it/)).toBeInTheDocument();
    expect(screen.getByText('Analysing with the model…')).toBeInTheDocument();
  });
});
