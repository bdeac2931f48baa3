/** S3's multipart limits: parts of 5 MiB and more (all but the last), at most 10,000 of them. */
export const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
export const S3_MAX_PARTS = 10_000;
