package core

// AnsweredQuestion is one keyboard-interactive answer a client gave in this session
// (Session.GetAnsweredQuestions): which prompt it answered and whether it was right. The
// answer itself is not kept: it may be a password or a one-time code.
type AnsweredQuestion struct {
	Pos      int
	Question string
	OK       bool
}

// maxAnswered bounds the answers a session keeps; the oldest go first.
const maxAnswered = 256

// recordAnswers notes the check of each answer of a keyboard-interactive attempt, before
// OnAuthInteractive fires.
func (s *Session) recordAnswers(qs []Question, ok []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range qs {
		s.answered = append(s.answered, AnsweredQuestion{Pos: q.Pos, Question: q.Prompt, OK: ok[i]})
	}
	if n := len(s.answered) - maxAnswered; n > 0 {
		s.answered = append(s.answered[:0:0], s.answered[n:]...)
	}
}

// AnsweredQuestions returns the keyboard-interactive answers given in this session, oldest
// first, each with whether it was right.
func (s *Session) AnsweredQuestions() []AnsweredQuestion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AnsweredQuestion(nil), s.answered...)
}
