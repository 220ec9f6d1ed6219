package commands

// OTPCodeHashV1 exposes the v1 code hash to tests that write an otp.requested.v1 event, as
// streams written before otp.requested.v2 still hold.
var OTPCodeHashV1 = otpCodeHash
