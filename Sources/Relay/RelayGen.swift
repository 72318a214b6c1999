import Engine
import Foundation

/// RelayGen (arXiv 2602.06454): the large model writes; when its text ends in a calibrated cue
/// phrase, the small model continues to the end of that sentence, then the large model resumes.
/// The final answer, after an answer marker, is the small model's.
///
/// Both models live in this process with their own KV caches; a hand-over prefills only the
/// tokens the other model wrote since (`Session.sync`). The large model's turns may themselves be
/// speculative (`relaygen-sd`).
public final class RelayGen: DecodingStrategy {
    public struct Settings: Sendable {
        public var cues: [String]
        /// Text after which the small model writes the rest (the final answer).
        public var answerMarkers = ["</think>", "\\boxed", "The answer is", "the answer is"]
        /// Tokens the large model writes after resuming before it may hand over again.
        public var minLargeTokens = 5
        /// Not in the paper: the large model also takes back a segment as soon as the small model's
        /// top-1 probability falls under this (0: never), before the token it was unsure of.
        public var smallPMin: Float = 0
        /// Not in the paper: the large model checks each small segment in the forward that catches
        /// its cache up anyway, and takes over at the first token that is not its own top-1 and that
        /// it gives a probability under this (0: no check; 1: the large model's greedy text). Needs
        /// the large model's logits, so a local large model.
        public var checkPMin: Float = 0
        /// Check every this many small-model tokens (0: once per segment). A rejection wastes the
        /// rest of its chunk: whole sentences run long in math (a display equation has no period),
        /// and on 10 GSM8K problems checking once per segment let the small model write about five
        /// tokens for each one kept.
        public var checkEvery = 8
        /// With a check, the small model writes its segments from the first this many token ids
        /// (nil: all), as it drafts in speculative decoding: the check keeps only tokens the large
        /// model finds plausible, and a quarter of the 0.5B's bytes are its output layer.
        public var checkedVocabulary: Int?
        /// The check the relaygen modes run with a local large model. On the 12 of 100 GSM8K
        /// problems that relaygen-sd without it lost against the large model alone, 0.05, 0.2 and
        /// 0.5 won back 7, 9 and 12.
        public static let defaultCheckPMin: Float = 0.5
        public init(cues: [String]) { self.cues = cues }
    }

    enum Turn: Equatable { case large(written: Int), small, answer }

    let large: DecodingStrategy
    let small: Solo
    let settings: Settings
    let tokenizer: Tokenizer
    var turn = Turn.large(written: 0)
    /// The answer's text so far and where the current small segment began in it.
    var text = ""
    var segmentStart: String.Index
    var promptCount: Int?
    /// Hand-overs since the last step returned, for the next one to report.
    var handovers: [StepEvent] = []
    /// Small-model tokens the large model's check replaced, and the token it wrote instead, which
    /// its next turn starts with.
    public private(set) var corrections = 0
    var correction: Int32?
    let checkSession: Session?
    var checkSampler: Sampler

    public init(large: DecodingStrategy, small: Solo, tokenizer: Tokenizer, settings: Settings,
                sampling: SamplingParams = SamplingParams()) throws {
        self.large = large
        self.small = small
        small.tracksConfidence = settings.smallPMin > 0
        self.settings = settings
        self.tokenizer = tokenizer
        segmentStart = text.startIndex
        checkSession = settings.checkPMin > 0 ? large.sessions[.large] : nil
        if settings.checkPMin > 0, checkSession == nil { throw RelayGenError.checkNeedsLocalLarge }
        var checkSampling = sampling
        checkSampling.seed = sampling.seed.map { $0 &+ 2 }
        checkSampler = Sampler(checkSampling)
    }

    public var sessions: [Role: Session] { large.sessions.merging(small.sessions) { a, _ in a } }

    public func step(context: [Int32]) throws -> Step { try step(context: context, atMost: Int.max) }

    public func step(context: [Int32], atMost limit: Int) throws -> Step {
        var step = try turnStep(context: context, limit: limit)
        step.events += handovers
        handovers = []
        return step
    }

    func turnStep(context: [Int32], limit: Int) throws -> Step {
        if promptCount == nil { promptCount = context.count }
        switch turn {
        case .large(let written):
            var step: Step
            if let token = correction {
                correction = nil
                step = Step(tokens: [token], role: .large)
            } else {
                step = try large.step(context: context, atMost: limit)
            }
            // Check at every token boundary of the step: a cue or marker cuts the step there.
            var kept: [Int32] = []
            for token in step.tokens {
                kept.append(token)
                text += tokenizer.decode([token])
                if endsWithMarker() {
                    hand(to: .answer)
                    break
                }
                if written + kept.count >= settings.minLargeTokens, endsWithCue() {
                    hand(to: .small)
                    break
                }
            }
            if case .large = turn { turn = .large(written: written + kept.count) }
            step.tokens = kept
            return step

        case .small:
            return try smallSegment(context: context, limit: limit)

        case .answer:
            let step = try small.step(context: context)
            text += tokenizer.decode(step.tokens)
            return step
        }
    }

    /// The small model writes its segment, to the end of the sentence (or the next `checkEvery`
    /// tokens of it). With a check, the large model then scores them in one forward (the one that
    /// catches its cache up) and keeps the longest prefix it finds plausible; at the first
    /// implausible token it writes that position itself, as its next turn's first token. A fully
    /// kept segment also yields the large model's next token from the same forward; a fully kept
    /// chunk lets the small model go on.
    func smallSegment(context: [Int32], limit: Int) throws -> Step {
        let start = text.endIndex
        var segment: [Int32] = [], pieces: [String] = [], logprobs: [TokenLogprob] = []
        var next = Turn.large(written: 0)
        let chunk = checkSession != nil && settings.checkEvery > 0 ? min(limit, settings.checkEvery) : limit
        var ended = true
        while true {
            guard segment.count < chunk else { ended = chunk == limit; break }
            let step = try small.step(context: context + segment, vocabulary: checkSession == nil ? nil : settings.checkedVocabulary)
            let token = step.tokens[0], piece = tokenizer.decode([token])
            if tokenizer.endOfGeneration.contains(token) { segment.append(token); pieces.append(""); break }
            // The sentence is complete (or the small model unsure): this token is the large model's.
            if sentenceEnded(before: piece) || small.confidence < settings.smallPMin { break }
            segment.append(token)
            pieces.append(piece)
            logprobs += step.logprobs ?? []
            text += piece
            if endsWithMarker() { next = .answer; break }
            if text[segmentStart...].contains("\n\n") { break }
        }
        guard !segment.isEmpty else {
            hand(to: .large(written: 0))
            return try turnStep(context: context, limit: limit)
        }
        guard let session = checkSession else {
            if ended { hand(to: next) }
            return Step(tokens: segment, role: .small, logprobs: logprobs.count == segment.count ? logprobs : nil)
        }
        // Row i: the large model's distribution for segment[i]; the last row follows the segment.
        let rows = try session.sync(to: context + segment, logitsFrom: context.count - 1)
        let V = session.model.config.vocabSize
        var kept = segment.count
        rows.withUnsafeBufferPointer { all in
            for i in 0...segment.count {
                let row = UnsafeBufferPointer(rebasing: all[i * V ..< (i + 1) * V])
                if i < segment.count, plausible(segment[i], in: row) { continue }
                kept = i
                // A segment that goes on, or stops at the end of text or the answer marker, leaves
                // the next token to the usual turns.
                if i == segment.count, !ended || next == .answer || tokenizer.endOfGeneration.contains(segment[i - 1]) { break }
                correction = checkSampler.sample(row, history: context + segment[..<i])
                break
            }
        }
        if kept < segment.count {
            corrections += 1
            next = .large(written: 0)
            text = String(text[..<start]) + pieces[..<kept].joined()
            hand(to: next)
        } else if ended {
            hand(to: next)
        }
        guard kept > 0 else { return try turnStep(context: context, limit: limit) }
        return Step(tokens: Array(segment[..<kept]), role: .small, logprobs: logprobs.count >= kept ? Array(logprobs[..<kept]) : nil)
    }

    /// The large model's own top-1 choice, or a token it gives at least `checkPMin`. So 1 keeps
    /// only what greedy decoding of the large model would write, and 0 everything.
    func plausible(_ token: Int32, in logits: UnsafeBufferPointer<Float>) -> Bool {
        let own = TokenLogprob(token: token, logits: logits, top: 1)
        return own.logprob >= own.top[0].logprob || expf(own.logprob) >= settings.checkPMin
    }

    func hand(to next: Turn) {
        turn = next
        handovers.append(.handover)
        segmentStart = text.endIndex
    }

    /// The text ends with a cue at a word boundary (after the start, a space or a newline).
    func endsWithCue() -> Bool {
        for cue in settings.cues where text.hasSuffix(cue) {
            let before = text.dropLast(cue.count).last
            if before == nil || before == " " || before == "\n" { return true }
        }
        return false
    }

    func endsWithMarker() -> Bool {
        settings.answerMarkers.contains { text.hasSuffix($0) }
    }

    /// Whether the segment so far ends a sentence, given the text that would follow. A period after
    /// a digit followed by a digit (3.5) or after a short abbreviation (e.g., Dr.) ends nothing.
    func sentenceEnded(before next: String) -> Bool {
        let segment = text[segmentStart...]
        guard let last = segment.last, ".!?".contains(last) else { return false }
        guard let first = next.first else { return false }
        if last == ".", first.isNumber, segment.dropLast().last?.isNumber == true { return false }
        guard first.isWhitespace || first == "\"" || first == "\u{201D}" || first == ")" else { return false }
        if last == "." {
            let word = segment.dropLast().split(whereSeparator: { $0 == " " || $0 == "\n" }).last.map(String.init) ?? ""
            if Self.abbreviations.contains(word.lowercased()) { return false }
        }
        return true
    }

    static let abbreviations: Set<String> = ["e.g", "i.e", "mr", "mrs", "ms", "dr", "vs", "etc", "approx", "no", "fig", "eq", "st"]
}

public enum RelayGenError: Error, CustomStringConvertible {
    case checkNeedsLocalLarge
    public var description: String {
        "RelayGen's check (check-p-min) needs the large model's logits, so a local large model (-m LARGE): a remote one (--large-url) gives only text"
    }
}
