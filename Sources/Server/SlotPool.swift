import Engine
import Foundation
import Relay

/// What a generation reports to the HTTP side, in order: text pieces, then `done` or `failed`.
enum GenerationEvent: Sendable {
    /// A piece of the answer, and the log-probabilities of its tokens when they were asked for.
    case text(String, Role, [TokenLogprob])
    case done(RelayResult)
    case failed(Error)
    /// Nothing new: a silent stream's cue to check that its client is still there.
    case heartbeat
}

/// One request for the engine: a prompt, a mode and generation options.
final class Job: @unchecked Sendable {
    let prompt: [Int32]
    let mode: ModeSpec
    let options: GenerationOptions
    let topLogprobs: Int?
    /// Shared with the HTTP handler: a client that leaves cancels the generation, and a slot
    /// blocked on a remote large model is released at once.
    let cancel: Cancellation
    let events: AsyncStream<GenerationEvent>
    let sink: AsyncStream<GenerationEvent>.Continuation

    init(prompt: [Int32], mode: ModeSpec, options: GenerationOptions, topLogprobs: Int? = nil,
         cancel: Cancellation = Cancellation()) {
        self.cancel = cancel
        self.topLogprobs = topLogprobs
        self.prompt = prompt
        self.mode = mode
        self.options = options
        (events, sink) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
        // The consumer went away (client disconnected, handler cancelled): stop generating. A
        // request's choices share `cancel`, so the end of one choice's events must not trip it.
        let flag = cancel
        sink.onTermination = { reason in if case .cancelled = reason { flag.cancel() } }
    }
}

/// The engine side of the server: `-np N` slots, each a thread with its own sessions (so its own
/// KV caches), and a bounded queue in front of them. Engine work is synchronous and CPU-bound, so it
/// runs on these threads, never on NIO's event loops. A new request goes to the idle slot whose
/// cache shares the longest prefix with its prompt, so a repeated system prompt is not prefilled
/// again.
final class SlotPool: @unchecked Sendable {
    final class Slot {
        let index: Int
        let pair: SessionPair
        var job: Job?
        init(index: Int, pair: SessionPair) {
            self.index = index
            self.pair = pair
        }
        /// Tokens this slot's caches already hold in common with `prompt`.
        func sharedPrefix(_ prompt: [Int32]) -> Int { (pair.large ?? pair.small)?.sharedPrefix(prompt) ?? 0 }
    }

    let slots: [Slot]
    let queueLimit: Int
    let settings: Mode.Settings
    let tokenizer: Tokenizer
    let contextSize: Int
    let metrics: Metrics
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var busy = 0
    private var stopping = false
    private var threads: [Thread] = []

    init(pairs: [SessionPair], queueLimit: Int, settings: Mode.Settings, tokenizer: Tokenizer, contextSize: Int, metrics: Metrics) {
        slots = pairs.enumerated().map { Slot(index: $0.offset, pair: $0.element) }
        self.queueLimit = queueLimit
        self.settings = settings
        self.tokenizer = tokenizer
        self.contextSize = contextSize
        self.metrics = metrics
        for slot in slots {
            let thread = Thread { [unowned self] in self.work(slot) }
            thread.name = "relay-slot-\(slot.index)"
            thread.stackSize = 16 << 20
            threads.append(thread)
            thread.start()
        }
    }

    var queueDepth: Int { condition.withLock { queue.count } }
    var busySlots: Int { condition.withLock { busy } }

    /// Hands each job to an idle slot, or queues it; a queue without room for all of them refuses
    /// them all (HTTP 429).
    func submit(_ jobs: [Job]) throws {
        try condition.withLock {
            try refuseIfFull(adding: jobs.count)
            for job in jobs {
                if let slot = slots.filter({ $0.job == nil }).max(by: { $0.sharedPrefix(job.prompt) < $1.sharedPrefix(job.prompt) }) {
                    slot.job = job
                    busy += 1
                } else {
                    queue.append(job)
                }
            }
            condition.broadcast()
        }
    }

    func submit(_ job: Job) throws { try submit([job]) }

    /// Refuses as `submit` would, before a request is read and tokenised.
    func checkRoom() throws { try condition.withLock { try refuseIfFull() } }

    private func refuseIfFull(adding jobs: Int = 1) throws {
        guard !stopping else { throw APIError(status: 503, message: "the server is shutting down", type: "server_error", code: "shutting_down") }
        guard jobs <= slots.count + queueLimit else {
            throw APIError.badRequest("the request asks for \(jobs) choices (prompts times n) but this server holds at most \(slots.count + queueLimit) generations (-np plus --queue)",
                                      param: "n")
        }
        guard (slots.count - busy) + (queueLimit - queue.count) >= jobs else {
            throw APIError(status: 429, message: "the server is busy: \(slots.count) requests running and \(queue.count) queued; retry later",
                           type: "server_error", code: "queue_full")
        }
    }

    /// Refuses new work, cancels queued and running requests and waits for the slots to finish.
    func shutdown() {
        let pending: [Job] = condition.withLock {
            stopping = true
            let q = queue
            queue.removeAll()
            for slot in slots { slot.job?.cancel.cancel() }
            condition.broadcast()
            return q
        }
        for job in pending { job.sink.yield(.failed(APIError(status: 503, message: "the server is shutting down", type: "server_error", code: "shutting_down"))); job.sink.finish() }
        condition.withLock { while busy > 0 { condition.wait() } }
    }

    private func work(_ slot: Slot) {
        while true {
            let job: Job? = condition.withLock {
                while slot.job == nil && !stopping { condition.wait() }
                return slot.job
            }
            guard let job else { return }
            run(job, on: slot)
            condition.withLock {
                slot.job = nil
                busy -= 1
                if !stopping, !queue.isEmpty {
                    // Among the first few waiting, the one that shares most of this slot's cache.
                    let window = queue.prefix(4).indices
                    let best = window.max { slot.sharedPrefix(queue[$0].prompt) < slot.sharedPrefix(queue[$1].prompt) }!
                    slot.job = queue.remove(at: best)
                    busy += 1
                }
                condition.broadcast()
            }
        }
    }

    private func run(_ job: Job, on slot: Slot) {
        defer { job.sink.finish() }
        guard !job.cancel.isCancelled else { return }
        do {
            var settings = self.settings
            settings.sampling = job.options.sampling
            settings.topLogprobs = job.topLogprobs
            settings.cancellation = job.cancel
            var options = job.options
            options.cancellation = job.cancel
            let strategy = try Mode.make(job.mode, sessions: slot.pair, settings: settings, promptTokens: job.prompt.count)
            let result = try Relay.generate(strategy, prompt: job.prompt, tokenizer: tokenizer, contextSize: contextSize,
                                            options: options) { text, role, logprobs in
                job.sink.yield(.text(text, role, Array(logprobs)))
                return true
            }
            if job.cancel.isCancelled { metrics.cancelled() }
            job.sink.yield(.done(result))
        } catch {
            job.sink.yield(.failed(error))
        }
    }
}
