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
    public private(set) var handovers = 0

    public init(large: DecodingStrategy, small: Solo, tokenizer: Tokenizer, settings: Settings) {
        self.large = large
        self.small = small
        small.tracksConfidence = settings.smallPMin > 0
        self.settings = settings
        self.tokenizer = tokenizer
        segmentStart = text.startIndex
    }

    public var sessions: [Role: Session] { large.sessions.merging(small.sessions) { a, _ in a } }
    public var drafted: Int { large.drafted }
    public var accepted: Int { large.accepted }
    public var remoteStats: RemoteStats? { large.remoteStats }

    public func step(context: [Int32]) throws -> Step { try step(context: context, atMost: Int.max) }

    public func step(context: [Int32], atMost limit: Int) throws -> Step {
        if promptCount == nil { promptCount = context.count }
        switch turn {
        case .large(let written):
            var step = try large.step(context: context, atMost: limit)
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
            let step = try small.step(context: context)
            let piece = tokenizer.decode(step.tokens)
            if tokenizer.endOfGeneration.contains(step.tokens[0]) { return step }
            if sentenceEnded(before: piece) || small.confidence < settings.smallPMin {
                // The small model's sentence is complete (or it is unsure): this token belongs to the large model's turn.
                hand(to: .large(written: 0))
                return try self.step(context: context, atMost: limit)
            }
            text += piece
            if endsWithMarker() {
                hand(to: .answer)
            } else if text[segmentStart...].contains("\n\n") {
                hand(to: .large(written: 0))
            }
            return step

        case .answer:
            let step = try small.step(context: context)
            text += tokenizer.decode(step.tokens)
            return step
        }
    }

    func hand(to next: Turn) {
        turn = next
        handovers += 1
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
