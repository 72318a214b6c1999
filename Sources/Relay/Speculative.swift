import Dispatch
import Engine

/// Draft-length settings, with llama.cpp's flag names.
public struct DraftParams: Sendable, Equatable, Codable {
    /// Most tokens drafted per step (`--draft-max`).
    public var max = 4
    /// Fewest drafted tokens worth verifying (`--draft-min`); shorter drafts fall back to one plain step.
    public var min = 0
    /// Drafting stops when the small model's top probability falls below this (`--draft-p-min`);
    /// the token it stopped at is still proposed when one more verified position costs less than
    /// it is expected to save.
    public var pMin: Float = 0.75
    /// The small model drafts from the first this many token ids only (`--draft-vocab`, 0: all):
    /// byte-level BPE ids run roughly from frequent to rare, and a quarter of the Qwen 0.5B's bytes
    /// are its output layer. Drafts are only proposals, so this changes speed, never the output.
    public var vocabulary = 32768
    /// Draft at most as many tokens as pay off, given the measured cost of a draft step, of a
    /// verification over n positions and the recent acceptance rate (none when verifying costs
    /// more than it returns). Verification is compute-bound, so its cost moves with the machine.
    public var adaptive = true
    /// Prompt-lookup drafting (`--draft-lookup`, 0: off): when the context's last n tokens (n from
    /// this down to 2) occurred earlier in it, the tokens that followed them there are a draft that
    /// costs no forward at all. Off by default: on 30 GSM8K problems (1.5B/0.5B, greedy) speculative
    /// decoding was 1.32x the large model alone with trigram lookup and 1.34x without, as the
    /// phrases that repeat are the ones the small model drafts well anyway.
    public var lookup = 0
    public init() {}
}

/// Picks the draft length that maximises expected tokens per second. Costs are running estimates:
/// a draft step, and a verification over n positions kept per n (a `CostCurve`); acceptance is an
/// EMA over drafted tokens. With k drafts each accepted with probability p, a round yields
/// 1 + p + ... + p^k tokens and costs k * draft + verify(k + 1).
public struct DraftController: Sendable {
    public private(set) var acceptance = 0.8
    /// The same for drafts looked up in the context: they either repeat a phrase or miss at once.
    public private(set) var lookupAcceptance = 0.5
    public private(set) var draftMs: Double?
    var verify = CostCurve()
    /// Rounds since the last one with drafts: every `explore` rounds without drafting, one full
    /// draft keeps the estimates current.
    var plainRounds = 0
    let explore = 16

    public init() {}

    /// The forwards a round joins when other sequences share them (server slots): each model's
    /// engine-time curve by positions, and the positions the other sequences bring.
    public struct Batch: Sendable {
        public var large: CostCurve, others: Int
        public var small: CostCurve, draftOthers: Int
        public init(large: CostCurve, others: Int, small: CostCurve, draftOthers: Int) {
            (self.large, self.others, self.small, self.draftOthers) = (large, others, small, draftOthers)
        }
    }

    /// What a round costs this sequence, in ms: verifying n positions, and one draft step.
    public struct Costs {
        public let verify: (Int) -> Double?
        public let draft: Double
    }

    /// Alone, the sequence's own measurements. Sharing forwards with other sequences, a plain step
    /// costs an even share of the forward it joins; a round that drafts falls out of step with the
    /// others (they decode while it drafts), so its verification is priced as a forward of its own
    /// (measured: 4 slots on the 1.5B/0.5B pair drafting a fifth as much as alone still made 0.87x
    /// plain batched decoding). So with busy slots drafting stops unless it beats the batch's own
    /// tokens, as vLLM turns speculation off above a batch size, and no round explores.
    public func costs(_ batch: Batch? = nil) -> Costs? {
        if let b = batch, b.others > 0, let base = b.large.ms(b.others + 1),
           let draft = b.small.ms(b.draftOthers + 1).map({ $0 / Double(b.draftOthers + 1) }) ?? draftMs {
            let share = base / Double(b.others + 1)
            return Costs(verify: { n in n == 1 ? share : b.large.ms(n) }, draft: draft)
        }
        return draftMs.map { Costs(verify: verifyMs, draft: $0) }
    }

    /// Verification time over n positions alone; nil until two different n were seen.
    public func verifyMs(_ n: Int) -> Double? { verify.ms(n) }

    public mutating func observeVerify(positions n: Int, ms: Double) { verify.observe(n, ms: ms) }

    public mutating func observeDraft(steps: Int, ms: Double) {
        guard steps > 0 else { return }
        let per = ms / Double(steps)
        draftMs = draftMs.map { 0.9 * $0 + 0.1 * per } ?? per
    }

    /// `accepted` of `proposed` drafts: the accepted ones count as successes, the first rejected one
    /// as a failure (the rest were never tested).
    public mutating func observeAcceptance(proposed: Int, accepted: Int) {
        Self.update(&acceptance, proposed: proposed, accepted: accepted)
    }

    public mutating func observeLookup(proposed: Int, accepted: Int) {
        Self.update(&lookupAcceptance, proposed: proposed, accepted: accepted)
    }

    static func update(_ rate: inout Double, proposed: Int, accepted: Int) {
        for i in 0..<min(proposed, accepted + 1) {
            rate = 0.95 * rate + 0.05 * (i < accepted ? 1 : 0)
        }
    }

    /// The draft length up to `max` with the most expected tokens per millisecond, and that rate
    /// (nil until the costs are known). k drafts that cost `draft` each (0 when looked up).
    func best(max: Int, acceptance p: Double, costs c: Costs, draft: Double) -> (k: Int, rate: Double)? {
        guard var best = rate(k: 0, acceptance: p, costs: c, draft: draft).map({ (k: 0, rate: $0) }) else { return nil }
        for k in stride(from: 1, through: max, by: 1) {
            guard let r = rate(k: k, acceptance: p, costs: c, draft: draft) else { break }
            if r > best.rate { best = (k, r) }
        }
        return best
    }

    /// Expected tokens per millisecond of a round with k drafts: (1 + p + ... + p^k) / (k * draft + verify(k + 1)).
    func rate(k: Int, acceptance p: Double, costs c: Costs, draft: Double) -> Double? {
        guard let v = c.verify(k + 1) else { return nil }
        var tokens = 1.0, power = 1.0
        for _ in 0..<k { power *= p; tokens += power }
        return tokens / (Double(k) * draft + v)
    }

    /// How many of `available` looked-up tokens to verify: 0 when a round the small model drafts
    /// for (`small` tokens, as `length` chose) is expected to pay more.
    public func lookupLength(available: Int, small: Int, batch: Batch? = nil) -> Int {
        guard let c = costs(batch), let lookup = best(max: available, acceptance: lookupAcceptance, costs: c, draft: 0) else { return available }
        return lookup.rate > rate(k: small, acceptance: acceptance, costs: c, draft: c.draft) ?? 0 ? lookup.k : 0
    }

    /// The draft length for the next round, at most `max`.
    public mutating func length(max: Int, batch: Batch? = nil) -> Int {
        guard let c = costs(batch), let best = best(max: max, acceptance: acceptance, costs: c, draft: c.draft)?.k else { return max }
        if best == 0, batch?.others ?? 0 > 0 { return 0 }   // the batcher's curves stay current without exploring
        if best == 0 {
            plainRounds += 1
            if plainRounds >= explore { plainRounds = 0; return max }
        } else {
            plainRounds = 0
        }
        return best
    }
}

/// Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): the small model proposes a few
/// tokens, the large model scores all of them in one batched forward, and verification keeps the
/// longest prefix the large model agrees with, plus one token of its own. Every token is the large
/// model's: at temperature 0 the output is exactly the large model's greedy output; when sampling,
/// the rejection rule keeps the large model's distribution exactly.
///
/// Limits: both models must share one vocabulary.
public final class Speculative: DecodingStrategy {
    public let target: Session
    public let draft: Session
    public let params: DraftParams
    var targetSampler: Sampler
    var draftSampler: Sampler
    /// Drafts looked up in the context, and how many of them were accepted.
    public private(set) var lookedUp = 0
    public private(set) var lookupAccepted = 0
    public private(set) var controller = DraftController()

    public init(target: Session, draft: Session, sampling: SamplingParams, draftParams: DraftParams) throws {
        try requireSharedVocabulary(target.model, draft.model)
        self.target = target
        self.draft = draft
        params = draftParams
        targetSampler = Sampler(sampling)
        var draftSampling = sampling
        draftSampling.seed = sampling.seed.map { $0 &+ 1 }
        draftSampler = Sampler(draftSampling)
    }

    public var sessions: [Role: Session] { [.large: target, .small: draft] }

    /// The batches this round's forwards join; nil when no other sequence shares them.
    var batch: DraftController.Batch?
    func sharedBatch() -> DraftController.Batch? {
        let large = target.model.batcher.batch(besides: target.cache), small = draft.model.batcher.batch(besides: draft.cache)
        guard large.others > 0 else { return nil }
        return DraftController.Batch(large: large.costs, others: large.others, small: small.costs, draftOthers: small.others)
    }

    public func step(context: [Int32]) throws -> Step {
        let room = target.contextSize - context.count - 1
        batch = sharedBatch()
        let limit = Swift.min(params.adaptive ? controller.length(max: params.max, batch: batch) : params.max, room)
        let found = Self.lookup(context, longest: params.lookup, limit: Swift.min(params.max, room))
        if !found.isEmpty {
            let k = params.adaptive ? controller.lookupLength(available: found.count, small: limit, batch: batch) : found.count
            if k > 0 { return try verifyLookup(context: context, proposal: Array(found.prefix(k))) }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let (proposal, draftDists, steps, firstMs) = try propose(context: context, limit: limit)
        // The first forward also catches up on the tokens the small model has not seen (many after
        // rounds without drafts): only the later ones measure what one more draft costs.
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        // Timed alone only: in a shared batch the wall time is the other sequences' too.
        if steps > 1, batch == nil { controller.observeDraft(steps: steps - 1, ms: ms - firstMs) }
        let tokens = try verifyRound(context: context, proposal: proposal, draftDists: draftDists)
        controller.observeAcceptance(proposed: proposal.count, accepted: tokens.count - 1)
        return Step(tokens: tokens, role: .large, events: [.drafted(proposal.count, accepted: tokens.count - 1)])
    }

    /// A round whose draft was looked up in the context: no small-model forward (its cache catches
    /// up in the next round it drafts). As a deterministic draft, q is one-hot on each token.
    func verifyLookup(context: [Int32], proposal: [Int32]) throws -> Step {
        let tokens = try verifyRound(context: context, proposal: proposal, draftDists: proposal.map { [Candidate(id: $0, p: 1)] })
        lookedUp += proposal.count
        lookupAccepted += tokens.count - 1
        controller.observeLookup(proposed: proposal.count, accepted: tokens.count - 1)
        return Step(tokens: tokens, role: .large, events: [.drafted(proposal.count, accepted: tokens.count - 1)])
    }

    /// The large model scores a proposal in one forward (its cost observed) and keeps what it
    /// agrees with, plus one token of its own.
    func verifyRound(context: [Int32], proposal: [Int32], draftDists: [[Candidate]]) throws -> [Int32] {
        let start = DispatchTime.now().uptimeNanoseconds
        // Positions the large model has yet to see: more than the proposal and one token only when
        // it also prefills (the prompt), which says nothing about the cost of verifying.
        let unseen = context.count + proposal.count - target.sharedPrefix(context + proposal)
        let scores = try score(context: context, proposal: proposal)
        if unseen == proposal.count + 1, batch == nil {
            controller.observeVerify(positions: unseen, ms: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return verify(context: context, proposal: proposal, draftDists: draftDists, scores: scores)
    }

    /// The tokens that followed the most recent earlier occurrence of the context's last n tokens
    /// (the longest n from `longest` down to 2 that occurred), at most `limit` of them.
    public static func lookup(_ context: [Int32], longest: Int, limit: Int) -> [Int32] {
        guard limit > 0, longest >= 2 else { return [] }
        for n in stride(from: longest, through: 2, by: -1) where context.count > n {
            let suffix = context[(context.count - n)...]
            for j in stride(from: context.count - n - 1, through: 0, by: -1) where context[j] == suffix.first! {
                if context[j ..< j + n].elementsEqual(suffix) {
                    return Array(context[(j + n) ..< Swift.min(j + n + limit, context.count)])
                }
            }
        }
        return []
    }

    /// The small model drafts up to `limit` tokens, stopping early when it is unsure; also returns
    /// the forwards it ran and how long the first one took.
    func propose(context: [Int32], limit: Int) throws -> ([Int32], [[Candidate]], Int, Double) {
        var proposal: [Int32] = []
        var dists: [[Candidate]] = []
        var steps = 0, firstMs = 0.0
        let start = DispatchTime.now().uptimeNanoseconds
        while proposal.count < limit {
            if steps == 1 { firstMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }
            steps += 1
            let logits = try draft.sync(to: context + proposal, vocabulary: params.vocabulary > 0 ? params.vocabulary : nil)
            let dist = logits.withUnsafeBufferPointer { draftSampler.distribution($0, history: context + proposal) }
            // Greedy distributions are one-hot, so confidence is read off the softmax itself.
            let confidence = draftSampler.params.isGreedy ? logits.withUnsafeBufferPointer(topProbability) : dist[0].p
            // Below p-min drafting stops, but this forward is paid for: its token is still proposed
            // when verifying one more position costs less than the token is expected to save.
            guard confidence >= params.pMin || worthVerifying(confidence, positions: proposal.count + 1) else { break }
            let token = draftSampler.params.isGreedy ? dist[0].id : draftSampler.draw(dist)
            proposal.append(token)
            dists.append(dist)
            if confidence < params.pMin { break }
        }
        if proposal.count < params.min { return ([], [], steps, firstMs) }
        return (proposal, dists, steps, firstMs)
    }

    /// Whether a drafted token the small model gives `confidence` is worth adding to a verification
    /// over `n` positions: its expected saving (a large-model step) exceeds the cost of one more
    /// position. Without estimates yet, only the first token is (two positions cost about one).
    func worthVerifying(_ confidence: Float, positions n: Int) -> Bool {
        guard let c = controller.costs(batch), let v1 = c.verify(1), let a = c.verify(n), let b = c.verify(n + 1) else { return n == 1 }
        return Double(confidence) * v1 > b - a
    }

    /// The large model's logits after the context and after each drafted token: proposal.count + 1 rows.
    func score(context: [Int32], proposal: [Int32]) throws -> [Float] {
        try target.sync(to: context + proposal, logitsFrom: context.count - 1)
    }

    /// Accepts drafted tokens while the large model agrees and always ends with one token of its own.
    func verify(context: [Int32], proposal: [Int32], draftDists: [[Candidate]], scores: [Float]) -> [Int32] {
        let V = target.model.config.vocabSize
        var out: [Int32] = []
        var history = context
        for i in 0...proposal.count {
            let dist = scores.withUnsafeBufferPointer { all in
                targetSampler.distribution(UnsafeBufferPointer(rebasing: all[i * V ..< (i + 1) * V]), history: history)
            }
            guard i < proposal.count else {
                out.append(targetSampler.params.isGreedy ? dist[0].id : targetSampler.draw(dist))   // the bonus token
                break
            }
            let x = proposal[i]
            if targetSampler.params.isGreedy {
                out.append(dist[0].id)
                if dist[0].id != x { break }
            } else {
                let (token, ok) = Self.resolve(x, p: dist, q: draftDists[i], rng: &targetSampler.rng)
                out.append(token)
                if !ok { break }
            }
            history.append(out.last!)
        }
        return out
    }

    /// The rejection rule of speculative sampling: accept the drafted `x` with probability
    /// min(1, p(x) / q(x)); otherwise draw from max(0, p - q), normalised. The returned token is
    /// distributed exactly as p when x was drawn from q.
    public static func resolve(_ x: Int32, p: [Candidate], q: [Candidate], rng: inout Xoshiro256) -> (Int32, accepted: Bool) {
        let px = p.first { $0.id == x }?.p ?? 0
        let qx = q.first { $0.id == x }?.p ?? 1
        if rng.unit() < px / qx { return (x, true) }
        var qOf: [Int32: Float] = [:]
        for c in q { qOf[c.id] = c.p }
        let residual = p.map { Candidate(id: $0.id, p: Swift.max(0, $0.p - (qOf[$0.id] ?? 0))) }
        var r = rng.unit() * residual.reduce(0) { $0 + $1.p }
        for c in residual where c.p > 0 {
            r -= c.p
            if r < 0 { return (c.id, false) }
        }
        return (residual.last { $0.p > 0 }?.id ?? p[0].id, false)
    }
}

public enum RelayError: Error, CustomStringConvertible {
    case vocabularyMismatch(large: String, small: String, detail: String)

    public var description: String {
        switch self {
        case .vocabularyMismatch(let l, let s, let d):
            return "the models do not share one vocabulary (\(d)): \(l) and \(s); this mode needs a pair with the same tokenizer"
        }
    }
}

/// Speculative decoding and token hand-over pass token ids between the models unchanged.
func requireSharedVocabulary(_ a: Model, _ b: Model) throws {
    let ta = a.tokenizer, tb = b.tokenizer
    let detail: String?
    if ta.vocabSize != tb.vocabSize {
        detail = "\(ta.vocabSize) vs \(tb.vocabSize) tokens"
    } else if ta.tokens != tb.tokens {
        detail = "different token texts"
    } else {
        detail = nil
    }
    if let detail { throw RelayError.vocabularyMismatch(large: a.file.path, small: b.file.path, detail: detail) }
}
