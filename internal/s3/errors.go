package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/catena-io/catena/client"
)

// APIError is an S3 error as the client sees it: an HTTP status and an
// XML body with a code from the S3 API reference.
type APIError struct {
	Code    string
	Status  int
	Message string
}

func (e *APIError) Error() string { return "s3: " + e.Code + ": " + e.Message }

// The S3 error codes the gateway answers with. Each is a value; use
// withMsg to give one a detail.
var (
	ErrAccessDenied             = &APIError{"AccessDenied", http.StatusForbidden, "Access Denied."}
	ErrBadDigest                = &APIError{"BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."}
	ErrBucketAlreadyExists      = &APIError{"BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available."}
	ErrBucketAlreadyOwnedByYou  = &APIError{"BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."}
	ErrBucketNotEmpty           = &APIError{"BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty."}
	ErrEntityTooSmall           = &APIError{"EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."}
	ErrEntityTooLarge           = &APIError{"EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."}
	ErrIncompleteBody           = &APIError{"IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."}
	ErrInternal                 = &APIError{"InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again."}
	ErrInvalidAccessKeyID       = &APIError{"InvalidAccessKeyId", http.StatusForbidden, "The access key ID you provided does not exist in our records."}
	ErrInvalidArgument          = &APIError{"InvalidArgument", http.StatusBadRequest, "Invalid argument."}
	ErrInvalidBucketName        = &APIError{"InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."}
	ErrInvalidDigest            = &APIError{"InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified is not valid."}
	ErrInvalidPart              = &APIError{"InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."}
	ErrInvalidPartOrder         = &APIError{"InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number."}
	ErrInvalidRange             = &APIError{"InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable."}
	ErrInvalidRequest           = &APIError{"InvalidRequest", http.StatusBadRequest, "Invalid request."}
	ErrKeyTooLong               = &APIError{"KeyTooLongError", http.StatusBadRequest, "Your key is too long."}
	ErrMalformedXML             = &APIError{"MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."}
	ErrMethodNotAllowed         = &APIError{"MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."}
	ErrMissingContentLength     = &APIError{"MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header."}
	ErrMissingSecurityHeader    = &APIError{"MissingSecurityHeader", http.StatusBadRequest, "Your request is missing a required header."}
	ErrNoSuchBucket             = &APIError{"NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist."}
	ErrNoSuchKey                = &APIError{"NoSuchKey", http.StatusNotFound, "The specified key does not exist."}
	ErrNoSuchUpload             = &APIError{"NoSuchUpload", http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."}
	ErrNotImplemented           = &APIError{"NotImplemented", http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."}
	ErrPreconditionFailed       = &APIError{"PreconditionFailed", http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold."}
	ErrRequestTimeTooSkewed     = &APIError{"RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the server's time is too large."}
	ErrSignatureDoesNotMatch    = &APIError{"SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	ErrAuthorizationMalformed   = &APIError{"AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed."}
	ErrAuthorizationQueryParams = &APIError{"AuthorizationQueryParametersError", http.StatusBadRequest, "The authorization query parameters are malformed."}
	ErrExpiredPresign           = &APIError{"AccessDenied", http.StatusForbidden, "Request has expired."}
	ErrContentSHA256Mismatch    = &APIError{"XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."}
	ErrObjectConflict           = &APIError{"InvalidArgument", http.StatusConflict, "The key conflicts with an existing key: one names a directory the other needs as an object, or the other way round."}
	ErrTooManyParts             = &APIError{"InvalidArgument", http.StatusBadRequest, "Part number must be an integer between 1 and 10000, inclusive."}
	ErrSlowDown                 = &APIError{"SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate."}
	ErrServiceUnavailable       = &APIError{"ServiceUnavailable", http.StatusServiceUnavailable, "Not enough chunkservers are available; please try again."}
	ErrInsufficientStorage      = &APIError{"InsufficientStorage", http.StatusInsufficientStorage, "The cluster has no space left."}
)

// withMsg is e with message msg.
func withMsg(e *APIError, format string, args ...any) *APIError {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// errorBody is the XML body of an error answer.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// fromClient maps an error of the client library to an S3 error; ok is
// false for an error with no S3 meaning (answered InternalError).
func fromClient(err error) (*APIError, bool) {
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		return ae, true
	case errors.Is(err, client.ErrNotFound):
		return ErrNoSuchKey, true
	case errors.Is(err, client.ErrPermission):
		return ErrAccessDenied, true
	case errors.Is(err, client.ErrReadOnly):
		return ErrAccessDenied, true
	case errors.Is(err, client.ErrNotDir), errors.Is(err, client.ErrIsDir), errors.Is(err, client.ErrExist):
		return ErrObjectConflict, true
	case errors.Is(err, client.ErrMasterUnreachable):
		return ErrSlowDown, true
	case errors.Is(err, client.ErrNoChunkservers):
		return ErrServiceUnavailable, true
	case errors.Is(err, client.ErrNoSpace):
		return ErrInsufficientStorage, true
	case errors.Is(err, client.ErrNameTooLong):
		return ErrKeyTooLong, true
	}
	return nil, false
}
