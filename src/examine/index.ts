/**
 * Step 1 of the workflow: examine the data.
 * @module
 */
export {
  examine,
  EXAMINE_DEFAULTS,
  formatReport,
  type DuplicateGroup,
  type DuplicateImage,
  type DuplicatePair,
  type ExaminableSplit,
  type ExaminableSplits,
  type ExamineArgs,
  type ExamineReport,
  type SplitReport,
  type Stats,
} from './examine';
