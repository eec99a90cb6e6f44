import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { makeResult } from '../test/fixtures';
import { ResultCard } from './ResultCard';

describe('ResultCard', () => {
  it('shows the class, the confidence and a bar per class', () => {
    render(<ResultCard result={makeResult()} fileName="glioma_001.jpg" />);
    expect(screen.getByRole('heading', { level: 2, name: 'Glioma' })).toBeInTheDocument();
    expect(screen.getByText('94.5%', { selector: 'strong' })).toBeInTheDocument();
    const meters = screen.getAllByRole('meter');
    expect(meters).toHaveLength(4);
    expect(meters.map((m) => m.getAttribute('aria-label'))).toEqual([
      'Glioma probability',
      'Meningioma probability',
      'No Tumor probability',
      'Pituitary probability',
    ]);
    const meningioma = screen.getByRole('meter', { name: 'Meningioma probability' });
    expect(meningioma).toHaveAttribute('aria-valuenow', '3.2');
    expect(meningioma).toHaveAttribute('aria-valuetext', '3.2%');
    expect(meningioma.querySelector('.bars__fill')).toHaveStyle({ width: '3.2%' });
    expect(screen.getByText('glioma_001.jpg')).toBeInTheDocument();
    expect(screen.getByText(/analysed in 31 ms/)).toBeInTheDocument();
  });

  it('marks the predicted class', () => {
    render(<ResultCard result={makeResult()} fileName="x.png" />);
    const row = screen.getByRole('meter', { name: 'Glioma probability' }).closest('li')!;
    expect(row).toHaveClass('bars__row--top');
    expect(within(row).getByText('94.5%')).toBeInTheDocument();
  });

  it('says when the model is unsure', () => {
    const unsure = makeResult({
      class: 'Meningioma',
      confidence: 41.2,
      probabilities: { Glioma: 38.8, Meningioma: 41.2, 'No Tumor': 10, Pituitary: 10 },
    });
    render(<ResultCard result={unsure} fileName="x.png" />);
    expect(screen.getByText(/low confidence/i)).toBeInTheDocument();
  });

  it('does not add a caution for a confident answer', () => {
    render(<ResultCard result={makeResult()} fileName="x.png" />);
    expect(screen.queryByText(/low confidence/i)).not.toBeInTheDocument();
  });

  it('warns when the service flags the image as not a brain MRI (OOD_POLICY=warn)', () => {
    const flagged = {
      ...makeResult(),
      ood: { flagged: true, score: 3.2, threshold: 1.1, reasons: ['strong colour'] },
    };
    render(<ResultCard result={flagged} fileName="photo.jpg" />);
    expect(screen.getByRole('alert')).toHaveTextContent(
      /does not look like a brain MRI \(strong colour\)/,
    );
  });

  it('says nothing about the check when the image passed it', () => {
    const passed = { ...makeResult(), ood: { flagged: false, score: 0.4, threshold: 1.1, reasons: [] } };
    render(<ResultCard result={passed} fileName="scan.jpg" />);
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });
});

describe('ResultCard with a DICOM answer', () => {
  const dicom = {
    modality: 'MR',
    rows: 256,
    columns: 240,
    bits_stored: 12,
    photometric_interpretation: 'MONOCHROME2',
    number_of_frames: 5,
    frame: 2,
    window: { center: 600, width: 1200, source: 'file' },
    transfer_syntax: 'Explicit VR Little Endian',
  };

  it('lists what was decoded and how', () => {
    const { container } = render(<ResultCard result={{ ...makeResult(), dicom }} fileName="series.dcm" />);
    expect(screen.getByRole('heading', { level: 3, name: 'DICOM' })).toBeInTheDocument();
    const facts = container.querySelector<HTMLElement>('dl.facts')!;
    expect(within(facts).getByText('MR')).toBeInTheDocument();
    expect(within(facts).getByText('240 × 256 px, 12 bits')).toBeInTheDocument();
    expect(within(facts).getByText('3 of 5')).toBeInTheDocument();
    expect(within(facts).getByText('centre 600, width 1200 (from the file)')).toBeInTheDocument();
    expect(within(facts).getByText('MONOCHROME2, Explicit VR Little Endian')).toBeInTheDocument();
  });

  it("says so when the window came from the image's own values, and shows the warning", () => {
    const ct = {
      ...dicom,
      modality: 'CT',
      number_of_frames: 1,
      frame: 0,
      window: { center: null, width: null, source: 'voi_lut' },
      warning: 'modality CT is not MR: this model was trained on MRI only',
    };
    render(<ResultCard result={{ ...makeResult(), dicom: ct }} fileName="ct.dcm" />);
    expect(screen.getByText("the file's VOI LUT")).toBeInTheDocument();
    expect(screen.queryByText('Frame')).not.toBeInTheDocument();
    expect(screen.getByText(/modality CT is not MR/)).toBeInTheDocument();
  });

  it('leaves the bit depth out when the file does not state it', () => {
    const { container } = render(
      <ResultCard result={{ ...makeResult(), dicom: { ...dicom, bits_stored: null } }} fileName="a.dcm" />,
    );
    const facts = container.querySelector<HTMLElement>('dl.facts')!;
    expect(within(facts).getByText('240 × 256 px')).toBeInTheDocument();
  });

  it('shows no DICOM section for other images', () => {
    render(<ResultCard result={makeResult()} fileName="scan.png" />);
    expect(screen.queryByRole('heading', { name: 'DICOM' })).not.toBeInTheDocument();
  });
});
