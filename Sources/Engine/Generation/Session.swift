import Foundation

/// A model with its own KV cache and the token sequence that cache holds.
/// `sync(to:)` is the one way tokens enter the cache: it keeps the longest common prefix,
/// truncates the rest and prefills only what is new, in one batched forward. Prompt prefill,
/// decoding, draft verification and hand-over between two models all go through it.
public final class Session: @unchecked Sendable {
    public let model: Model
    public let cache: KVCache
    public private(set) var tokens: [Int32] = []

    /// Seconds spent in forward passes and the positions they processed, split at the end of the
    /// prompt: `generate` calls `promptDone()` once the first step of the answer is written, so a
    /// verification forward of several positions counts as decoding.
    public private(set) var prefillSeconds = 0.0
    public private(set) var decodeSeconds = 0.0
    public private(set) var prefillTokens = 0
    public private(set) var decodeTokens = 0
    private var inPrompt = true

    public init(model: Model, contextSize: Int) {
        self.model = model
        cache = model.makeCache(capacity: contextSize)
    }

    public var contextSize: Int { cache.capacity }

    /// When set, every `sync` also keeps the last hidden state of each position it returns logits
    /// for in `hidden` (for a head trained on the frozen model); off, the forward pass is unchanged.
    public var keepsHidden = false
    public private(set) var hidden: [Float] = []

    /// How many leading tokens of `target` the cache already holds.
    public func sharedPrefix(_ target: [Int32]) -> Int {
        var n = 0
        while n < tokens.count, n < target.count, tokens[n] == target[n] { n += 1 }
        return n
    }

    /// Makes the cache hold exactly `target` and returns logits: for the last position, or with
    /// `logitsFrom`, one row for each position from that index on (those are re-evaluated); with
    /// `vocabulary`, over only the first that many token ids.
    @discardableResult
    public func sync(to target: [Int32], logitsFrom: Int? = nil, vocabulary: Int? = nil) throws -> [Float] {
        guard !target.isEmpty else { throw ModelError.emptyInput }
        guard target.count <= cache.capacity else { throw ModelError.contextOverflow(needed: target.count, contextSize: cache.capacity) }
        var keep = sharedPrefix(target)
        // The last position must be evaluated to have its logits.
        keep = min(keep, target.count - 1, logitsFrom ?? Int.max)
        cache.truncate(to: keep)
        tokens.removeLast(tokens.count - keep)

        let new = Array(target[keep...])
        let start = Date()
        let row = Model.Row(cache: cache, tokens: new, logits: logitsFrom.map { .from($0 - keep) } ?? .last,
                            vocabulary: vocabulary, keepsHidden: keepsHidden)
        // Shares its forwards with what other sessions of this model run meanwhile (server slots).
        let out: Model.Output
        do {
            out = try model.batcher.run(row, model: model)
        } catch {
            cache.truncate(to: keep)   // a prompt abandoned part-way filled some positions
            throw error
        }
        if keepsHidden { hidden = out.hidden }
        let elapsed = Date().timeIntervalSince(start)
        if inPrompt { prefillSeconds += elapsed; prefillTokens += new.count } else { decodeSeconds += elapsed; decodeTokens += new.count }
        tokens = target
        return out.logits
    }

    public func resetTimings() {
        prefillSeconds = 0; decodeSeconds = 0; prefillTokens = 0; decodeTokens = 0
        inPrompt = true
    }

    /// What runs from now on is decoding.
    public func promptDone() { inPrompt = false }
}
