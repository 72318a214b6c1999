import Engine
import Foundation

/// llama-perplexity's measure, with its conventions so the numbers compare: the text's token ids
/// are cut into chunks of `context` tokens, the first of each replaced by BOS when the model adds
/// one; each chunk runs from an empty cache; the positions of its second half (from context/2 to
/// context-2) are scored on the token that follows them.
public struct Perplexity {
    public let model: Model
    public let context: Int
    /// One cache for every chunk, emptied before each.
    let cache: KVCache

    public init(model: Model, context: Int) {
        (self.model, self.context, self.cache) = (model, context, model.makeCache(capacity: context))
    }

    /// Positions of a chunk whose next-token prediction is scored.
    public var scored: Range<Int> { context / 2 ..< context - 1 }

    /// The text's whole chunks; a tail shorter than a chunk is left out, as llama-perplexity does.
    public func chunks(of tokens: [Int32]) throws -> [[Int32]] {
        guard tokens.count >= context else { throw EvalError.tooShort(tokens: tokens.count, context: context) }
        let bos = model.tokenizer.addBOS ? model.tokenizer.bosID : nil
        return stride(from: 0, to: tokens.count - context + 1, by: context).map { start in
            var chunk = Array(tokens[start ..< start + context])
            if let bos { chunk[0] = bos }
            return chunk
        }
    }

    /// Running totals of the negative log-likelihood over scored positions.
    public struct Score: Sendable {
        public var count = 0
        public var nll = 0.0
        public var nll2 = 0.0
        public init() {}
        public var perplexity: Double { exp(nll / Double(max(count, 1))) }
        /// llama-perplexity's error estimate: the mean's standard error carried through exp.
        public var error: Double {
            guard count > 1 else { return 0 }
            let mean = nll / Double(count), variance = nll2 / Double(count) - mean * mean
            return perplexity * (max(variance, 0) / Double(count - 1)).squareRoot()
        }
    }

    /// Runs one chunk, adds its scored positions to `score`, and hands their logits (one row of the
    /// vocabulary per scored position) to `logits`.
    public func run(_ chunk: [Int32], into score: inout Score, logits: ((UnsafeBufferPointer<Float>) throws -> Void)? = nil) throws {
        cache.truncate(to: 0)
        let rows = try model.forward(chunk, cache: cache, logits: .from(scored.lowerBound))
        let V = model.config.vocabSize
        try rows.withUnsafeBufferPointer { all in
            for (r, position) in scored.enumerated() {
                let row = UnsafeBufferPointer(rebasing: all[r * V ..< (r + 1) * V])
                let top = row.max()!
                let logSum = Double(top) + log(row.reduce(0.0) { $0 + exp(Double($1 - top)) })
                let nll = logSum - Double(row[Int(chunk[position + 1])])
                score.count += 1; score.nll += nll; score.nll2 += nll * nll
            }
            try logits?(UnsafeBufferPointer(rebasing: all[0 ..< scored.count * V]))
        }
    }
}
