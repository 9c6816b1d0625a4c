// How much a backup's stream stages hold between them: as little as keeps bytes moving.
//
// Every chunk the guest reads from zstd, seals, reads from storage or opens is a new ArrayBuffer
// outside V8's heap. V8 frees those cheaply while they are young (a scavenge), but a chunk still
// held by a stream's buffer when a scavenge comes is kept, and one kept twice is moved to the old
// generation, where only a full mark-compact of the whole heap frees it; once such buffers add up
// to V8's external-memory limit (64 MB) it runs one. In a long-lived process with a heap of a few
// hundred MB a mark-compact costs 0.3-0.8 s of CPU, so megabytes queued at each of four or five
// stages made Node's CPU per GB of backup 2-5× what sealing and hashing need
// (bench/results/backup-end-to-end.md, 2026-12-06 "buffers held"). Stages therefore queue no
// more than one pipe read (64 KiB) where the next stage takes bytes synchronously, and nothing
// beyond the chunk being handed over where the next stage is the last.

/** what a stage queues when its consumer copies or hashes each chunk as it comes */
export const stageBufferBytes = 64 * 1024;
