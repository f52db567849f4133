-- totp-second-factor.lua: password plus a TOTP code over SSH keyboard-interactive.
--
-- OnAuthInteractiveSetQuestions runs before the prompts are sent. The questions are asked in
-- ascending position: first the user's password, then the current 6-digit code of the
-- authenticator app, checked against the user's totp_secret (RFC 6238, 30 s steps, one step
-- of clock skew, each code accepted once per session). A user without totp_secret cannot
-- pass the second question.
--
--   users:
--     - id: alice
--       password: "$argon2id$..."
--       totp_secret: JBSWY3DPEHPK3PXP
--       auth_methods: [keyboard-interactive]
--   event_handlers:
--     - event: OnAuthInteractiveSetQuestions
--       script: totp-second-factor.lua
Session.AddQuestionPassword(0, 'Password: ')
Session.AddQuestionTOTP(1, 'Verification code: ')
