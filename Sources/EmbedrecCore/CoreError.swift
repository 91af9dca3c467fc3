/// The one error type the core throws. The C layer turns it into a status code plus the
/// thread's last-error message, so every message must make sense to a Python user on its own:
/// name the bad value and what would have been accepted.
public struct CoreError: Error, CustomStringConvertible {
    public enum Kind: Int32 {
        case invalidArgument = 1
        case invalidHandle = 2
        case outOfMemory = 3
        case busy = 4
        case cancelled = 5
        case internalError = 6
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func invalid(_ message: String) -> CoreError { CoreError(.invalidArgument, message) }

    public var description: String { message }
}
